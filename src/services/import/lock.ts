// The job's run lock: one run at a time per job (overlapping cron runs), taken over from a
// run that is known dead (its process is gone, or on another host its heartbeat is stale).
import { CompanyctlError } from '../../errors.js';
import type { ImportJob } from '../../infra/db/import-jobs.js';
import type { Store } from '../../infra/db/store.js';
import { describeLockOwner, lockHolderAlive } from '../../infra/run-lock.js';

/** A run whose heartbeat (its last checkpoint) is older than this, on another host, is taken for dead. */
const STALE_MS = 10 * 60_000;

/** Whether the run holding the job's lock is still alive. */
export function jobOwnerAlive(job: ImportJob, now: Date): boolean {
  return lockHolderAlive(job.lockOwner, job.heartbeatAt, now, STALE_MS);
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

