// companyctl import show <job>: one import job: state, checkpoint, counts, rejects file.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('show')
    .description('show one import job')
    .argument('<job>', 'the job id')
    .addHelpText('after', '\nExamples:\n  companyctl import show 12\n  companyctl import show 12 --json | jq .rejected')
    .action((job: string, _opts: unknown, c: Command) => run(c, (ctx) => showRun(ctx, job)));
}

export async function showRun(ctx: Context, job: string): Promise<number> {
  const { parseJobId } = await import('../../src/io/import-cli.js');
  const { getImportJob } = await import('../../src/services/import/index.js');
  const { outputFormat, writeJson, writeRecord } = await import('../../src/io/output.js');
  const j = await getImportJob({ store: () => ctx.store() }, parseJobId(job));
  const format = outputFormat(ctx);
  if (format === 'json') return writeJson(ctx, j), 0;
  const entries = Object.entries(j).map(([k, v]) => [k, typeof v === 'object' && v !== null ? JSON.stringify(v) : v]);
  await writeRecord(ctx, Object.fromEntries(entries));
  return 0;
}
