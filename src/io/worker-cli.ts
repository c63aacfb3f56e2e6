// The worker command's ports: its log lines (JSON on stderr without a terminal, short lines on
// one) and the job runners it is given, built from this run's context.
import type { Context } from '../context.js';
import { CompanyctlError } from '../errors.js';
import type { JobKind } from '../infra/db/job-queue.js';
import type { ImportOptions } from '../services/import/index.js';
import type { WorkerLogEntry } from '../services/worker/index.js';
import type { JobRunner } from '../services/worker/jobs.js';
import type { QueueDeps } from '../services/worker/queue.js';
import { withCancellation } from './cancellation.js';
import { writeJson, writeRecord } from './output.js';

export function workerLog(ctx: Context, onError: (e: WorkerLogEntry) => void): (e: WorkerLogEntry) => void {
  const tty = ctx.io.stderrIsTTY;
  return (e) => {
    if (e.level === 'error') onError(e);
    if (ctx.globals.quiet && e.level === 'info') return;
    const time = new Date();
    if (!tty) {
      ctx.io.stderr.write(`${JSON.stringify({ time: time.toISOString(), ...e })}\n`);
      return;
    }
    const { level, msg, worker: _w, ...rest } = e;
    const extra = Object.entries(rest)
      .filter(([, v]) => v !== undefined && (typeof v !== 'object' || v === null))
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ');
    ctx.io.stderr.write(`${time.toISOString().slice(11, 19)} ${level === 'info' ? '' : `${level}: `}${msg}${extra ? `  ${extra}` : ''}\n`);
  };
}

/** What this worker can run: queued imports and enrichments, with this host's settings. */
export async function jobRunners(ctx: Context): Promise<Partial<Record<JobKind, JobRunner>>> {
  const { importJobRunner } = await import('../services/worker/import-job.js');
  const { importDeps } = await import('./import-cli.js');
  return { import: importJobRunner(importDeps(ctx)) };
}

function queueDeps(ctx: Context): QueueDeps {
  return { store: () => ctx.store(), now: () => ctx.now(), actor: ctx.actor(), role: ctx.identity?.role ?? null, stateDir: ctx.paths.stateDir };
}

/** Warn when no worker of this store is alive: the job waits until one starts. */
async function warnWithoutWorker(ctx: Context, jobId: number): Promise<void> {
  const { anyWorkerAlive } = await import('../infra/db/worker-registry.js');
  const { workerSettings } = await import('../services/worker/settings.js');
  const store = await ctx.store();
  const since = new Date(ctx.now().getTime() - workerSettings(ctx.config(), store.dialect).leaseMs).toISOString();
  if (!(await anyWorkerAlive(store.read, since))) ctx.notice(`note: no worker is running for this store; job ${jobId} waits until one starts ("companyctl worker")`);
}

/** `import <file> --queue`: check, stage, queue; print the job id. */
export async function queueImportRun(ctx: Context, options: ImportOptions): Promise<number> {
  const { queueImport } = await import('../services/worker/queue.js');
  const { importDeps } = await import('./import-cli.js');
  const r = await queueImport(queueDeps(ctx), importDeps(ctx), options, ctx.io.stdin, (m) => ctx.notice(m));
  if (ctx.globals.json) writeJson(ctx, { jobId: r.jobId, state: r.state });
  else await writeRecord(ctx, { job: r.jobId, state: r.state, format: r.format, encoding: r.encoding, 'input bytes': r.inputBytes, 'staged bytes': r.stagedBytes });
  ctx.notice(`queued import job ${r.jobId}; follow it with "companyctl import wait ${r.jobId}"`);
  await warnWithoutWorker(ctx, r.jobId);
  return 0;
}

/** `import wait <job>`: block until it ends; its summary on stdout, its exit code as ours. */
export async function waitForQueuedRun(ctx: Context, id: number, timeoutMs: number): Promise<number> {
  const { waitForJob } = await import('../services/worker/queue.js');
  const store = await ctx.store();
  const job = await withCancellation(ctx, 'stopped waiting; the job goes on', (signal) => waitForJob(store, id, timeoutMs, signal));
  const result = (job.result ?? {}) as Record<string, unknown>;
  const enrich = job.kind === 'enrich';
  if (job.state === 'failed' || job.state === 'cancelled') {
    const code = job.state === 'cancelled' ? 'COMPANYCTL_CANCELLED' : enrich ? 'COMPANYCTL_ENRICH_FAILED' : 'COMPANYCTL_IMPORT_FAILED';
    throw new CompanyctlError(code, `queued job ${id} ${job.state}: ${job.error ?? 'no reason recorded'}`, {
      hint: enrich ? 'see "companyctl enrich list"' : job.refId ? `see "companyctl import show ${job.refId}"; committed rows stay` : 'fix the input and queue it again',
      data: { jobId: id, [enrich ? 'enrichRun' : 'importJob']: job.refId, cause: result.code ?? null, summary: result },
    });
  }
  const fields = enrich ? ['total', 'enriched', 'unchanged', 'notFound', 'failed', 'skipped'] : ['rows', 'inserted', 'updated', 'unchanged', 'rejected', 'rejectsFile', 'seconds'];
  const doc = {
    jobId: id,
    state: job.state,
    exitCode: job.exitCode,
    [enrich ? 'enrichRun' : 'importJob']: job.refId,
    ...Object.fromEntries(fields.map((f) => [f, result[f] ?? null])),
  };
  await writeRecord(ctx, doc, ['job', String(id)]);
  return job.exitCode ?? 0;
}

/** `enrich --queue`: the selection as given (checked already); print the job id. */
export async function queueEnrichRun(ctx: Context, options: object): Promise<number> {
  const { queueEnrich } = await import('../services/worker/queue.js');
  const r = await queueEnrich(queueDeps(ctx), { ...options });
  if (ctx.globals.json) writeJson(ctx, r);
  else await writeRecord(ctx, { job: r.jobId, state: r.state });
  ctx.notice(`queued enrich job ${r.jobId}; follow it with "companyctl import wait ${r.jobId}"`);
  await warnWithoutWorker(ctx, r.jobId);
  return 0;
}
