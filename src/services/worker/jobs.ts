// The worker's job loop: claim one due job, run it through its kind's runner, record how it
// ended (the exit code the command would have had), and carry on. A stopping worker hands the
// job back (it resumes from its last committed chunk elsewhere); a job whose input is bad fails
// with the reason; a lost store connection hands it back once the store answers again.
import { hostname } from 'node:os';
import * as q from '../../infra/db/job-queue.js';
import type { QueuedJob, JobOutcome } from '../../infra/db/job-queue.js';
import * as reg from '../../infra/db/worker-registry.js';
import type { Store } from '../../infra/db/store.js';
import { isCompanyctlError } from '../../errors.js';
import type { Worker } from './index.js';
import type { Wake } from './wake.js';

export interface JobControl {
  /** Aborted when the worker stops or loses the job: stop at the next safe point. */
  signal: AbortSignal;
  workerId: string;
  store: () => Promise<Store>;
  /** Record the import job / enrich run this job became (for `import list` and `import wait`). */
  setRef(refId: number): Promise<void>;
  /**
   * Whether the run holding a lock (`host:pid:…`) is alive, as the worker registry sees it;
   * undefined when no worker had that host and pid (decide as usual).
   */
  ownerAlive(owner: string): boolean | undefined;
}

export type JobRunner = (job: QueuedJob, ctl: JobControl) => Promise<JobOutcome>;

/** Thrown by a runner when the job cannot run yet (its input is busy elsewhere): queued again after `delayMs`. */
export class JobNotReady extends Error {
  constructor(
    message: string,
    readonly delayMs?: number,
  ) {
    super(message);
  }
}

const CONNECTION = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|Connection terminated|connection (?:is )?(?:closed|ended|lost)|terminating connection|server closed the connection|connection error|not queryable|Timeout acquiring a connection|the notification connection closed/i;

/** Whether `e` (or its cause) says the store could not be reached, rather than that the work was bad. */
export function isConnectionTrouble(e: unknown): boolean {
  for (let x = e as { code?: string; message?: string; cause?: unknown } | undefined, depth = 0; x && depth < 6; x = x.cause as typeof x, depth++) {
    if (x.code === 'COMPANYCTL_STORE_UNAVAILABLE') return true;
    if (typeof x.code === 'string' && /^(08...|57P0[123])$/.test(x.code)) return true;
    if (CONNECTION.test(String(x.message ?? ''))) return true;
    if (isCompanyctlError(x) && x.code === 'COMPANYCTL_IMPORT_FAILED' && x.data?.cause === 'COMPANYCTL_STORE_UNAVAILABLE') return true;
  }
  return false;
}

export async function runJobs(w: Worker, wake: Wake): Promise<void> {
  const d = w.deps;
  while (!w.stopping) {
    let job: QueuedJob | undefined;
    try {
      const store = await d.store();
      const now = d.now();
      job = await q.claimNext(store, w.id, now.toISOString(), new Date(now.getTime() + d.settings.leaseMs).toISOString());
    } catch (e) {
      await w.trouble('claiming a job', e);
      continue;
    }
    if (!job) {
      await wake.sleep(d.settings.pollMs);
      continue;
    }
    w.held.add(job.id);
    try {
      await runOne(w, job);
    } finally {
      w.held.delete(job.id);
    }
  }
}

async function runOne(w: Worker, job: QueuedJob): Promise<void> {
  const d = w.deps;
  const ac = new AbortController();
  let lost = false;
  const onStop = () => ac.abort();
  w.stop.addEventListener('abort', onStop, { once: true });
  w.onLost = (id) => {
    if (id !== job.id) return;
    lost = true;
    ac.abort();
  };
  const started = Date.now();
  const base = { worker: w.id, jobId: job.id, kind: job.kind, attempt: job.attempts };
  try {
    if (job.attempts > d.settings.maxAttempts) {
      await finish(w, job, {
        state: 'failed',
        exitCode: 1,
        result: null,
        error: `claimed ${job.attempts - 1} times without finishing: its workers died or lost the store each time`,
      });
      return;
    }
    const runner = d.runners[job.kind];
    if (!runner) {
      await finish(w, job, { state: 'failed', exitCode: 1, result: null, error: `this worker cannot run ${job.kind} jobs` });
      return;
    }
    d.log({ level: 'info', msg: job.attempts > 1 ? 'job resumed' : 'job started', ...base });
    let outcome: JobOutcome;
    try {
      const workers = await reg.listWorkers((await d.store()).read, new Date(0).toISOString(), 1000);
      const aliveSince = d.now().getTime() - d.settings.leaseMs;
      outcome = await runner(job, {
        signal: ac.signal,
        workerId: w.id,
        store: d.store,
        setRef: async (refId) => q.setRef(await d.store(), job.id, w.id, refId),
        ownerAlive: (owner) => {
          const [host, pid] = owner.split(':');
          // This process runs one job at a time: a lock it holds is left from a run that ended.
          if (host === hostname() && pid === String(process.pid)) return false;
          const row = workers.find((x) => x.host === host && String(x.pid) === pid);
          if (!row) return undefined;
          // A live worker that holds no job (it lost this one after its lease) runs no import either.
          return row.state !== 'stopped' && Date.parse(row.heartbeatAt) >= aliveSince && row.holds.length > 0;
        },
      });
    } catch (e) {
      if (lost) {
        d.log({ level: 'warn', msg: 'job lost: another worker took it over after the lease', ...base });
        return;
      }
      if (e instanceof JobNotReady) {
        await release(w, job, e.delayMs ?? d.settings.retryAfterMs, e.message);
        d.log({ level: 'info', msg: `job put back: ${e.message}`, ...base });
        return;
      }
      if (w.stopping && isCompanyctlError(e) && e.code === 'COMPANYCTL_CANCELLED') {
        await release(w, job, 0, null);
        d.log({ level: 'info', msg: 'job handed back: it resumes from its last committed chunk', ...base, seconds: secs(started) });
        return;
      }
      if (isConnectionTrouble(e)) {
        await w.trouble(`job ${job.id}`, e);
        await release(w, job, 0, null);
        return;
      }
      const err = e as { code?: string; message?: string; exitCode?: number; data?: Record<string, unknown> };
      outcome = {
        state: 'failed',
        exitCode: isCompanyctlError(e) ? e.exitCode : 1,
        result: (err.data?.summary as Record<string, unknown> | undefined) ?? { code: err.code ?? 'COMPANYCTL_INTERNAL' },
        error: String(err.message ?? e).split('\n')[0]!,
      };
    }
    if (lost) return;
    await finish(w, job, outcome);
    d.log({ level: outcome.state === 'failed' ? 'warn' : 'info', msg: 'job finished', ...base, state: outcome.state, exitCode: outcome.exitCode, seconds: secs(started), ...(outcome.error ? { error: outcome.error } : {}) });
  } finally {
    w.stop.removeEventListener('abort', onStop);
    w.onLost = undefined;
  }
}

const secs = (since: number) => Math.round((Date.now() - since) / 10) / 100;

async function finish(w: Worker, job: QueuedJob, o: JobOutcome): Promise<void> {
  const d = w.deps;
  for (let attempt = 1; ; attempt++) {
    try {
      const store = await d.store();
      const held = await store.transaction(async (tx) => {
        const ok = await q.finishQueuedJob(tx, job.id, w.id, o, d.now().toISOString());
        // The input is no longer needed once the rows are in; a failed job keeps it for a look.
        if (ok && o.state !== 'failed') await q.dropInput(tx, job.id);
        return ok;
      });
      if (!held) d.log({ level: 'warn', msg: 'job outcome not recorded: another worker holds the job now', worker: w.id, jobId: job.id });
      else w.countJob(job.kind, o.state);
      return;
    } catch (e) {
      // The outcome is worth a few reconnects: without it the job runs again after its lease.
      if (attempt >= 5 || !isConnectionTrouble(e)) return w.logError(`recording job ${job.id}`, e);
      await w.trouble(`recording job ${job.id}`, e);
    }
  }
}

async function release(w: Worker, job: QueuedJob, delayMs: number, reason: string | null): Promise<void> {
  const d = w.deps;
  try {
    const store = await d.store();
    const now = d.now();
    await store.transaction((tx) => q.releaseQueuedJob(tx, job.id, w.id, new Date(now.getTime() + delayMs).toISOString(), now.toISOString(), reason));
  } catch (e) {
    // Not handed back: it is taken over after its lease.
    w.logError(`handing back job ${job.id}`, e);
  }
}
