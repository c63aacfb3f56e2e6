// The job's run lock: one run at a time per job (overlapping cron runs), taken over from a
// run that is known dead (its process is gone, or on another host its heartbeat is stale).
import { CompanyctlError } from '../../errors.js';
import type { ImportJob } from '../../infra/db/import-jobs.js';
import type { Store } from '../../infra/db/store.js';
import { describeLockOwner, lockHolderAlive } from '../../infra/run-lock.js';

/** A run whose heartbeat (its last checkpoint) is older than this, on another host, is taken for dead. */
const STALE_MS = 10 * 60_000;

/** Whether the run holding the job's lock is still alive (`told`: what the caller knows of it). */
export function jobOwnerAlive(job: ImportJob, now: Date, told?: (owner: string) => boolean | undefined): boolean {
  return (job.lockOwner ? told?.(job.lockOwner) : undefined) ?? lockHolderAlive(job.lockOwner, job.heartbeatAt, now, STALE_MS);
}

export function lockedError(job: ImportJob): CompanyctlError {
  const { host, pid } = describeLockOwner(job.lockOwner);
  return new CompanyctlError(
    'COMPANYCTL_IMPORT_LOCKED',
    `import job ${job.id} (${job.source}) is already running (pid ${pid} on ${host}, last checkpoint ${job.heartbeatAt ?? 'none'}); not starting a second run`,
    { hint: `wait for it to finish, or see "companyctl import show ${job.id}"`, data: { jobId: job.id, owner: job.lockOwner } },
  );
}

/** Take the job's lock for `owner`, or fail naming the run that holds it. */
export async function claim(store: Store, job: ImportJob, owner: string, now: Date): Promise<void> {
  const j = await import('../../infra/db/import-jobs.js');
  const ok = await store.transaction((tx) =>
    j.claimJob(tx, job.id, owner, now.toISOString(), new Date(now.getTime() - STALE_MS).toISOString(), job.lockOwner),
  );
  if (!ok) throw lockedError((await j.getJob(store.read, job.id)) ?? job);
}


/**
 * Jobs left `running` by a run that died (killed, power loss) become `failed`, so they show
 * as resumable instead of running for ever; a live run's job is left alone.
 */
export async function reapDeadJobs(store: Store, now: Date): Promise<void> {
  const j = await import('../../infra/db/import-jobs.js');
  for (const job of await j.listJobs(store.read, { limit: 100, state: 'running' })) {
    if (jobOwnerAlive(job, now)) continue;
    await store
      .transaction((tx) =>
        j.releaseJob(tx, job.id, job.lockOwner ?? '', 'failed', 'interrupted: its run ended without finishing (killed?); resume it with "companyctl import resume"', now.toISOString()),
      )
      .catch((e) => {
        // Best effort: a store busy with another import is asked again by the next run.
        if ((e as CompanyctlError).code !== 'COMPANYCTL_STORE_BUSY') throw e;
      });
  }
}

/** How long an import waits, by default, for other imports into the same SQLite store (--wait). */
export const DEFAULT_WAIT_MS = 60 * 60_000;
const POLL_MS = 1000;

/**
 * SQLite has one writer: an import holds it for each chunk, longer than another writer's busy
 * wait. So on SQLite imports take turns, oldest job first: a run waits (reads only, with one
 * notice) while another live import runs, up to `waitMs`, and retries its own small writes when
 * they meet a busy store. PostgreSQL runs them side by side.
 */
export class ImportTurn {
  private readonly deadline: number;
  private noticed = false;

  constructor(
    private readonly store: Store,
    private readonly opts: { waitMs: number; notice: (m: string) => void; signal?: AbortSignal; now: () => Date },
  ) {
    this.deadline = Date.now() + opts.waitMs;
  }

  /** Wait while a live import older than `ownJob` (any, without one) runs on this store. */
  async wait(ownJob?: number): Promise<void> {
    if (this.store.dialect !== 'sqlite') return;
    const j = await import('../../infra/db/import-jobs.js');
    for (;;) {
      const now = this.opts.now();
      const running = await j.listJobs(this.store.read, { limit: 100, state: 'running' });
      const ahead = running.filter((o) => o.id !== ownJob && (ownJob === undefined || o.id < ownJob) && jobOwnerAlive(o, now)).pop();
      if (!ahead) return;
      const { host, pid } = describeLockOwner(ahead.lockOwner);
      if (!this.noticed) {
        this.noticed = true;
        this.opts.notice(`waiting for import job ${ahead.id} (pid ${pid} on ${host}) to finish: one import writes to a SQLite store at a time (up to ${Math.round(this.opts.waitMs / 60_000)} min, --wait)`);
      }
      if (Date.now() >= this.deadline) throw this.tooLong(ahead.id);
      await this.sleep();
    }
  }

  /** Run a small write, retrying while the store is busy (another import's chunk) until the deadline. */
  async write<T>(fn: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if ((e as CompanyctlError).code !== 'COMPANYCTL_STORE_BUSY' || Date.now() >= this.deadline) throw e;
        await this.sleep();
      }
    }
  }

  private tooLong(jobId: number): CompanyctlError {
    return new CompanyctlError('COMPANYCTL_STORE_BUSY', `import job ${jobId} still holds the store after ${Math.round(this.opts.waitMs / 60_000)} min; not starting`, {
      hint: 'run this import again when it has finished, or wait longer with --wait <duration> (e.g. 6h)',
      data: { jobId },
    });
  }

  private sleep(): Promise<void> {
    const { signal } = this.opts;
    if (signal?.aborted) return Promise.reject(cancelledWhileWaiting());
    return new Promise((resolve, reject) => {
      const t = setTimeout(done, POLL_MS);
      function done() {
        signal?.removeEventListener('abort', stop);
        resolve();
      }
      function stop() {
        clearTimeout(t);
        reject(cancelledWhileWaiting());
      }
      signal?.addEventListener('abort', stop, { once: true });
    });
  }
}

const cancelledWhileWaiting = () => new CompanyctlError('COMPANYCTL_CANCELLED', 'cancelled while waiting for another import; nothing was written');
