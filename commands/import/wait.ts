// companyctl import wait <job>: block until a queued import ends; exit with its own exit code.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface ImportWaitOptions {
  timeout: string;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('wait')
    .description('wait for a queued import (import --queue) to end; exit 0, 3 (some rows rejected) or 1 as the import did')
    .argument('<job>', 'the job id that "import --queue" printed')
    .option('--timeout <duration>', 'give up after this long (30s, 5m, 2h): exit 1, COMPANYCTL_WAIT_TIMEOUT; the job goes on', '30m')
    .addHelpText(
      'after',
      `
Examples:
  job=$(companyctl import nightly.csv.gz --queue --json | jq .jobId)
  companyctl import wait "$job" --timeout 30m --json`,
    )
    .action((job: string, opts: ImportWaitOptions, c: Command) => run(c, (ctx) => waitRun(ctx, job, opts)));
}

export async function waitRun(ctx: Context, job: string, opts: ImportWaitOptions): Promise<number> {
  const { parseJobId } = await import('../../src/io/import-cli.js');
  const { parseDuration } = await import('../../src/io/flags.js');
  const id = parseJobId(job);
  const timeoutMs = parseDuration('--timeout', opts.timeout, { units: ['s', 'm', 'h'], bareUnit: 's', max: 7 * 86_400_000, example: '30s, 5m, 2h' });
  const { waitForQueuedRun } = await import('../../src/io/worker-cli.js');
  return waitForQueuedRun(ctx, id, timeoutMs);
}
