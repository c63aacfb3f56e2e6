// Bulk loads: an input large against the table (at least BULK_BYTES, and a row for every
// existing company at ~BULK_BYTES_PER_ROW) drops the indexes no write depends on and builds
// them once at the end: one sort instead of a million random B-tree inserts (both dialects).
import type { ImportJob } from '../../infra/db/import-jobs.js';
import type { Store } from '../../infra/db/store.js';
import { jobOwnerAlive } from './lock.js';
import { sourceSize } from './source.js';

export const BULK_BYTES = 16 << 20;
const BULK_BYTES_PER_ROW = 256;

const indexes = () => import('../../infra/db/import-indexes.js');

/**
 * Whether this import is a bulk load; if so its deferrable indexes are dropped now.
 * Otherwise, indexes a bulk load left dropped are built - unless that load is still running.
 */
export async function startBulkLoad(store: Store, job: ImportJob, source: string, minBytes: number, now: Date): Promise<boolean> {
  const ix = await indexes();
  const size = sourceSize(source) ?? 0;
  const bulk = size > 0 && size >= minBytes && size / BULK_BYTES_PER_ROW >= (await ix.highestCompanyId(store.read));
  if (bulk) {
    await store.transaction((tx) => ix.deferIndexes(tx, job.id));
    return true;
  }
  const noted = await ix.deferredBy(store.read);
  if (noted === undefined) return false;
  const other = noted === job.id ? undefined : await (await import('../../infra/db/import-jobs.js')).getJob(store.read, noted);
  if (other?.state === 'running' && jobOwnerAlive(other, now)) return false;
  await store.transaction((tx) => ix.restoreIndexes(tx));
  return false;
}

/** Build the deferred indexes one transaction each (each holds the write lock for one sort). */
export async function endBulkLoad(store: Store): Promise<void> {
  const ix = await indexes();
  for (const { name } of ix.DEFERRABLE_INDEXES) await store.transaction((tx) => ix.restoreIndexes(tx, name));
  await store.transaction((tx) => ix.restoreIndexes(tx));
}
