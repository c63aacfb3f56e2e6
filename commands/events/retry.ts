// companyctl events retry <id> | --all-dead: give dead (or waiting) deliveries a fresh set of
// attempts and deliver them now.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface EventsRetryOptions {
  allDead?: boolean;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('retry')
    .description("retry an event's dead or failed deliveries now, or every dead delivery")
    .argument('[id]', 'the event id (see "companyctl events list --dead")')
    .option('--all-dead', 'every dead delivery')
    .addHelpText('after', '\nExamples:\n  companyctl events retry 42\n  companyctl events retry --all-dead --json')
    .action((id: string | undefined, opts: EventsRetryOptions, c: Command) => run(c, (ctx) => retryRun(ctx, id, opts)));
}

export async function retryRun(ctx: Context, id: string | undefined, opts: EventsRetryOptions): Promise<number> {
  const { CompanyctlError } = await import('../../src/errors.js');
  if ((id === undefined) === !opts.allDead) {
    throw new CompanyctlError('COMPANYCTL_USAGE', id === undefined ? 'give an event id or --all-dead' : 'give an event id or --all-dead, not both', {
      field: 'id',
      hint: 'see "companyctl events list --dead"',
    });
  }
  if (id !== undefined && !/^\d+$/.test(id)) throw new CompanyctlError('COMPANYCTL_USAGE', `${JSON.stringify(id)} is not an event id`, { field: 'id' });
  const { retryEvents, dispatchDepsFor, refreshAndCheck } = await import('../../src/services/events.js');
  const { dispatchDue } = await import('../../src/services/dispatch.js');
  const { eventsEnv } = await import('../../src/context.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const env = eventsEnv(ctx);
  const eventId = id === undefined ? undefined : Number(id);
  const reset = await retryEvents(env, eventId === undefined ? { allDead: true } : { eventId });
  const report = reset > 0 ? await dispatchDue(await dispatchDepsFor(env), { eventIds: eventId === undefined ? undefined : [eventId] }) : undefined;
  const { counts } = await refreshAndCheck(env, report);
  if (reset === 0) ctx.notice(eventId === undefined ? 'no dead deliveries' : `event ${eventId} has no dead or failed deliveries`);
  await writeRecord(ctx, {
    reset,
    delivered: report?.delivered ?? 0,
    failed: report?.failed ?? 0,
    dead: report?.dead ?? 0,
    lastError: report?.errors.at(-1)?.error ?? null,
    remainingPending: counts.pending,
    remainingFailed: counts.failed,
    remainingDead: counts.dead,
  });
  return report && (report.failed > 0 || report.dead > 0) ? 3 : 0;
}
