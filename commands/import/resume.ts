// companyctl import resume <job>: continue a killed, failed or cancelled import from its
// last committed chunk, with the options it started with.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('resume')
    .description('resume an unfinished import job from its last committed chunk')
    .argument('<job>', 'the job id (see "companyctl import list")')
    .option('--input <file>', 'the input again, when the job read stdin (-) or the file has moved')
    .option('--wait <duration>', 'SQLite: how long to wait for another import into the same store (default 1h; 0: do not wait)')
    .addHelpText('after', '\nExamples:\n  companyctl import resume 12\n  zcat nightly.ndjson.gz | companyctl import resume 13 --input -')
    .action((job: string, opts: { input?: string; wait?: string }, c: Command) => run(c, (ctx) => resumeRun(ctx, job, opts)));
}

export async function resumeRun(ctx: Context, job: string, opts: { input?: string; wait?: string }): Promise<number> {
  const { parseJobId, parseWait, importDeps, withImportCancellation, writeImportSummary, exitCodeOf } = await import('../../src/io/import-cli.js');
  const id = parseJobId(job);
  const { resumeImport } = await import('../../src/services/import/index.js');
  const { importProgress } = await import('../../src/io/progress.js');
  const progress = await importProgress(ctx);
  const summary = await withImportCancellation(ctx, (signal) => resumeImport(importDeps(ctx), id, opts.input, progress, signal, parseWait(opts.wait)));
  await writeImportSummary(ctx, summary);
  return exitCodeOf(summary);
}
