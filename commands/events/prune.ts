// companyctl events prune --older-than 30d: remove delivered events (and their delivery rows)
// older than that; undelivered, failed and dead ones stay, and the audit trail keeps its entries.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface EventsPruneOptions {
  olderThan: string;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('prune')
    .description('remove delivered events older than a given age (the audit trail and dead letters are kept)')
    .requiredOption('--older-than <age>', 'age of the events to remove: 30d, 12h, 2w')
    .addHelpText(
      'after',
      `
Set "events": { "retentionDays": 30 } in the config file to prune at every "events drain".

Examples:
  companyctl events prune --older-than 30d
  0 3 * * *  COMPANYCTL_TOKEN=... companyctl events prune --older-than 90d --quiet --json`,
    )
    .action((opts: EventsPruneOptions, c: Command) => run(c, (ctx) => pruneRun(ctx, opts)));
}

export async function pruneRun(ctx: Context, opts: EventsPruneOptions): Promise<number> {
  const { parseDuration } = await import('../../src/io/flags.js');
  const ms = parseDuration('--older-than', opts.olderThan, { units: ['h', 'd', 'w'], min: 1, example: '30d, 12h, 2w' });
  const { pruneEvents } = await import('../../src/services/events.js');
  const { eventsEnv } = await import('../../src/context.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const r = await pruneEvents(eventsEnv(ctx), ms);
  await writeRecord(ctx, { removed: r.removed, before: r.before });
  ctx.notice(`removed ${r.removed} delivered events created before ${r.before}`);
  return 0;
}
