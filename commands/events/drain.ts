// companyctl events drain: deliver every pending event now (what cron runs).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface EventsDrainOptions {
  wait?: string;
  warm?: boolean;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('drain')
    .description('deliver every pending event now; exit 3 if deliveries failed or went dead')
    .option('--wait <duration>', 'also wait for retries due within this time (e.g. 30s, 5m)')
    .option('--warm', 'rebuild the file cache entries of written companies (not just drop them)')
    .addHelpText(
      'after',
      `
Several hosts may drain one PostgreSQL store at once: each claims its own deliveries.

Examples:
  companyctl events drain
  */5 * * * *  COMPANYCTL_TOKEN=... companyctl events drain --quiet --json >> /var/log/companyctl-drain.ndjson
  companyctl events drain --wait 2m --warm`,
    )
    .action((opts: EventsDrainOptions, c: Command) => run(c, (ctx) => drainRun(ctx, opts)));
}

export async function drainRun(ctx: Context, opts: EventsDrainOptions): Promise<number> {
  const { parseDuration } = await import('../../src/io/flags.js');
  // setTimeout takes at most ~24.8 days; a day is more than any retry schedule waits.
  const waitMs = opts.wait === undefined ? 0 : parseDuration('--wait', opts.wait, { units: ['ms', 's', 'm', 'h'], bareUnit: 's', max: 86_400_000, example: '30s, 5m, 1h' });
  const { drainEvents } = await import('../../src/services/events.js');
  const { eventsEnv } = await import('../../src/context.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const r = await drainEvents(eventsEnv(ctx), { waitMs, warm: opts.warm });
  const doc = {
    fannedOut: r.fannedOut,
    delivered: r.delivered,
    failed: r.failed,
    dead: r.dead,
    remainingPending: r.remaining.pending,
    remainingFailed: r.remaining.failed,
    remainingDead: r.remaining.dead,
    lastError: r.errors.at(-1)?.error ?? null,
    alerts: r.alerts.map((a) => a.name),
  };
  if (ctx.globals.json) await writeRecord(ctx, { ...doc, byHandler: r.byHandler, alerts: r.alerts });
  else await writeRecord(ctx, { ...doc, alerts: doc.alerts.join(',') || null });
  return r.dead > 0 || r.failed > 0 ? 3 : 0;
}
