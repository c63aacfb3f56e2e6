// companyctl worker: runs until stopped (systemd, a container, a terminal), delivering events,
// running queued jobs and keeping this host's file cache in step with the store.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface WorkerOptions {
  events?: boolean; // --no-events sets false
  jobs?: boolean; // --no-jobs sets false
}

/** A stopping worker gives up on the work in flight after this long, so it exits within 10 s. */
const GRACE_MS = 9_000;

export function register(program: Command, run: Runner): Command {
  return program
    .command('worker')
    .description('run until stopped: deliver events, run queued jobs, keep this host\'s cache in sync; see also worker status')
    .option('--no-events', 'do not deliver events (run queued jobs only)')
    .option('--no-jobs', 'do not run queued jobs (deliver events only)')
    .addHelpText(
      'after',
      `
Needs an API token with the editor role in COMPANYCTL_TOKEN (or a login). Logs one JSON line per
job, delivery batch and error on stderr. SIGTERM or Ctrl-C: finishes the chunk or delivery in
flight, hands back its job and exits 0 within 10 s; a second signal exits at once.

Examples:
  COMPANYCTL_TOKEN=$(cat /etc/companyctl/worker.token) companyctl worker --db postgresql://companyctl@db/companyctl
  companyctl worker --no-jobs          # events and cache sync only
  companyctl worker status`,
    )
    .action((opts: WorkerOptions, c: Command) => run(c, (ctx) => workerRun(ctx, opts)));
}

export async function workerRun(ctx: Context, opts: WorkerOptions): Promise<number> {
  const { runWorker } = await import('../../src/services/worker/index.js');
  const { workerSettings } = await import('../../src/services/worker/settings.js');
  const { jobRunners } = await import('../../src/io/worker-cli.js');
  const { eventsEnv, appLog } = await import('../../src/context.js');
  const { withGracefulStop } = await import('../../src/io/cancellation.js');
  const { workerLog } = await import('../../src/io/worker-cli.js');
  const { VERSION } = await import('../../src/version.js');
  const loc = ctx.storeLocation();
  const settings = workerSettings(ctx.config(), loc.dialect);
  // On PostgreSQL the worker's cache sync already refilled what each event changed: its cache
  // handler must not drop those fresh entries again.
  const events = eventsEnv(ctx, loc.dialect === 'postgresql' ? { cacheInvalidated: () => true } : {});
  events.settings(); // a broken "events" config fails now, not in the loop
  const runners = await jobRunners(ctx);
  const { enrichJobRunner } = await import('../../src/services/worker/enrich-job.js');
  const { runEnrich } = await import('../enrich/enrich.js');
  runners.enrich = enrichJobRunner((job, progress, signal) => runEnrich(ctx, job.options, progress, signal, { actor: `${job.actor} (queued job ${job.id})` }));
  const log = workerLog(ctx, (e) => appLog(ctx, { level: 'error', code: String(e.code ?? 'COMPANYCTL_INTERNAL'), message: e.msg }));
  const report = await withGracefulStop(ctx, GRACE_MS, (stop, deadline) =>
    runWorker(
      {
        store: () => ctx.store(),
        resetStore: () => ctx.close(),
        location: loc,
        settings,
        events,
        cache: ctx.cache(),
        cacheTtlSeconds: ctx.cacheTtlSeconds(),
        stateDir: ctx.paths.stateDir,
        now: () => ctx.now(),
        log,
        runners,
        version: VERSION,
        deliver: opts.events !== false,
        jobs: opts.jobs !== false,
      },
      stop,
      deadline,
    ),
  );
  if (ctx.globals.json) (await import('../../src/io/output.js')).writeJson(ctx, report);
  // Work abandoned at the deadline may still hold the store's connections: leave without waiting for them.
  if (report.abandoned) process.exit(0);
  return 0;
}
