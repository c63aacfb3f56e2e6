// companyctl enrich list: recent enrich runs with their counts (unfinished ones resume).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('list')
    .description('recent enrich runs: state and counts')
    .option('--limit <n>', 'at most n runs, newest first', '20')
    .addHelpText('after', '\nExamples:\n  companyctl enrich list\n  companyctl enrich list --json --limit 1')
    .action((opts: { limit: string }, c: Command) => run(c, (ctx) => listRun(ctx, opts)));
}

export async function listRun(ctx: Context, opts: { limit: string }): Promise<number> {
  const { CompanyctlError } = await import('../../src/errors.js');
  const { listEnrichRuns } = await import('../../src/services/enrich.js');
  const { writeRecords } = await import('../../src/io/output.js');
  if (!/^\d+$/.test(opts.limit) || Number(opts.limit) < 1) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `--limit: ${JSON.stringify(opts.limit)} is not a positive whole number`, { field: '--limit' });
  }
  const runs = await listEnrichRuns(await ctx.store(), Number(opts.limit));
  if (runs.length === 0 && !ctx.globals.json) ctx.notice('no enrich runs yet');
  await writeRecords(ctx, runs, ['id', 'state', 'total', 'enriched', 'unchanged', 'notFound', 'failed', 'skipped', 'pending', 'requests', 'cacheHits', 'actor', 'startedAt', 'finishedAt']);
  return 0;
}
