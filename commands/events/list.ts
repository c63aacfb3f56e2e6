// companyctl events list: event deliveries (one row per event and handler), newest first.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface EventsListOptions {
  pending?: boolean;
  failed?: boolean;
  dead?: boolean;
  event?: string;
  limit: string;
  ndjson?: boolean;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('list')
    .description('list event deliveries, newest first (pending, failed = waiting to retry, dead, done)')
    .option('--pending', 'only deliveries not yet made (and events not yet handed to handlers)')
    .option('--failed', 'only deliveries that failed and wait for their next attempt')
    .option('--dead', 'only deliveries out of attempts (retry with "events retry")')
    .option('--event <id>', 'only this event')
    .option('--limit <n>', 'at most n rows', '50')
    .option('--ndjson', 'one JSON object a line')
    .addHelpText('after', '\nExamples:\n  companyctl events list --dead\n  companyctl events list --event 42 --json\n  companyctl events list --failed --ndjson | jq .lastError')
    .action((opts: EventsListOptions, c: Command) => run(c, (ctx) => listRun(ctx, opts)));
}

export async function listRun(ctx: Context, opts: EventsListOptions): Promise<number> {
  const { CompanyctlError } = await import('../../src/errors.js');
  const states = (['pending', 'failed', 'dead'] as const).filter((s) => opts[s]);
  if (states.length > 1) throw new CompanyctlError('COMPANYCTL_USAGE', `--${states.join(', --')}: choose one`, { field: `--${states[1]}` });
  const int = (flag: string, v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new CompanyctlError('COMPANYCTL_USAGE', `${flag}: ${JSON.stringify(v)} is not a positive whole number`, { field: flag });
    return Number(v);
  };
  const { listEvents } = await import('../../src/services/events.js');
  const { eventsEnv } = await import('../../src/context.js');
  const { outputFormat, writeJson, writeNdjson, writeRecords } = await import('../../src/io/output.js');
  const rows = await listEvents(eventsEnv(ctx), {
    status: states[0],
    eventId: opts.event === undefined ? undefined : int('--event', opts.event),
    limit: int('--limit', opts.limit),
  });
  const format = outputFormat(ctx, { ndjson: opts.ndjson });
  if (format === 'json') return writeJson(ctx, { items: rows }), 0;
  if (format === 'ndjson') return rows.forEach((r) => writeNdjson(ctx, r)), 0;
  if (rows.length === 0) {
    ctx.notice(states[0] ? `no ${states[0]} event deliveries` : 'no events');
    return 0;
  }
  const shown = rows.map((r) => ({ ...r, handler: r.handler ?? '-', lastError: format === 'table' && r.lastError ? r.lastError.slice(0, 60) : r.lastError }));
  await writeRecords(ctx, shown, ['eventId', 'type', 'companyId', 'handler', 'status', 'attempts', 'nextAttemptAt', 'lastError', 'createdAt']);
  return 0;
}
