// companyctl import list: recent import jobs, newest first.
import { Option, type Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface ImportListOptions {
  state?: string;
  limit: string;
  ndjson?: boolean;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('list')
    .description('list import jobs, newest first')
    .addOption(new Option('--state <state>', 'only jobs in this state').choices(['queued', 'running', 'completed', 'completed_with_rejects', 'failed', 'cancelled']))
    .option('--limit <n>', 'at most n jobs', '20')
    .option('--ndjson', 'one JSON object a line')
    .addHelpText('after', '\nExamples:\n  companyctl import list\n  companyctl import list --state failed --json')
    .action((opts: ImportListOptions, c: Command) => run(c, (ctx) => listRun(ctx, opts)));
}

export async function listRun(ctx: Context, opts: ImportListOptions): Promise<number> {
  const { CompanyctlError } = await import('../../src/errors.js');
  if (!/^\d+$/.test(opts.limit) || Number(opts.limit) < 1) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `--limit: ${JSON.stringify(opts.limit)} is not a positive whole number`, { field: '--limit' });
  }
  const { listImportJobs } = await import('../../src/services/import/index.js');
  const { outputFormat, writeJson, writeList, writeNdjson } = await import('../../src/io/output.js');
  const { withQueuedImports } = await import('../../src/services/worker/queue.js');
  const limit = Number(opts.limit);
  const found = opts.state === 'queued' ? [] : await listImportJobs({ store: () => ctx.store() }, { limit, state: opts.state as never });
  // Queued imports (import --queue) that no worker has started yet come first; the rest name their queued job and worker.
  const jobs = await withQueuedImports(await ctx.store(), found, { limit, state: opts.state });
  const format = outputFormat(ctx, { ndjson: opts.ndjson });
  if (format === 'json') return writeJson(ctx, { items: jobs }), 0;
  if (format === 'ndjson') return jobs.forEach((j) => writeNdjson(ctx, j)), 0;
  const header = ['id', 'state', 'source', 'rows', 'inserted', 'updated', 'unchanged', 'rejected', 'startedAt', 'queued', 'worker'];
  const rows = jobs.map((j) => [j.id, j.state, j.source, j.rowsDone, j.inserted, j.updated, j.unchanged, j.rejected, j.startedAt, j.queuedJob?.id, j.queuedJob?.worker]);
  if (format === 'table' && jobs.length === 0) ctx.notice('no import jobs');
  else await writeList(ctx, header, rows);
  return 0;
}
