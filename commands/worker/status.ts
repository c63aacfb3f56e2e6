// companyctl worker status: the store's workers (host, pid, heartbeat, what each holds), alive or gone.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface WorkerStatusOptions {
  all?: boolean;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('status')
    .description('list the workers of this store: host, pid, started, last heartbeat, the jobs each holds, alive or gone')
    .option('--all', 'also workers that stopped or went silent in the last 24 hours')
    .addHelpText('after', '\nExamples:\n  companyctl worker status\n  companyctl worker status --all --json | jq \'.[] | select(.alive)\'')
    .action((opts: WorkerStatusOptions, c: Command) => run(c, (ctx) => statusRun(ctx, opts)));
}

export async function statusRun(ctx: Context, opts: WorkerStatusOptions): Promise<number> {
  const { workerStatus } = await import('../../src/services/worker/status.js');
  const { workerSettings } = await import('../../src/services/worker/settings.js');
  const { outputFormat, writeJson, writeTable, plainLine } = await import('../../src/io/output.js');
  const store = await ctx.store();
  const all = await workerStatus(store, ctx.now(), workerSettings(ctx.config(), store.dialect).leaseMs);
  const shown = opts.all ? all : all.filter((w) => w.alive || w.state !== 'stopped');
  const format = outputFormat(ctx);
  if (format === 'json') return writeJson(ctx, shown), 0;
  const header = ['host', 'pid', 'state', 'alive', 'started', 'heartbeat', 'holds', 'jobs', 'delivered'];
  const rows = shown.map((w) => [w.host, w.pid, w.state, w.alive ? 'alive' : 'gone', w.startedAt, w.heartbeatAt, w.holds.map((j) => `job ${j}`).join(','), w.jobsRun, w.eventsDelivered]);
  if (format === 'table') {
    if (shown.length === 0) ctx.notice('no workers running (start one with "companyctl worker")');
    else await writeTable(ctx, header, rows);
  } else {
    for (const r of rows) ctx.io.stdout.write(plainLine(r));
  }
  return 0;
}
