// Cache sync across hosts: a change announced by any host (see infra/db/notify.ts) reaches this
// host's worker, which replaces the changed companies' entries with the new version (so the next
// read is still a hit) and drops every company entry when a change names no ids (an import
// chunk). Both invalidate first (a new cache generation), so a read that began before the change
// never caches its older copy afterwards.
import type { FileCache } from '../../infra/cache.js';
import { findCompany } from '../../infra/db/company-read.js';
import type { Change } from '../../infra/db/notify.js';
import type { SqlReader } from '../../infra/db/store.js';
import { refreshCompanyCache } from '../company.js';

export interface CacheSyncResult {
  dropped: number;
  refilled: number;
}

/** Every company entry goes (the worker heard nothing for a while, or a change named no ids). */
export function dropAllCompanies(cache: FileCache): number {
  return cache.dropPrefix('company.');
}

export async function applyChange(cache: FileCache, read: SqlReader, ttlSeconds: number, change: Change): Promise<CacheSyncResult> {
  if (change.companies === 'all') return { dropped: dropAllCompanies(cache), refilled: 0 };
  let refilled = 0;
  let dropped = 0;
  for (const id of change.companies ?? []) {
    if (cache.get<unknown>(`company.id.${id}`) === undefined) {
      // Not cached here: nothing to refill, but a read in flight must not cache the old version.
      cache.delete([`company.id.${id}`]);
      continue;
    }
    const current = await findCompany(read, { kind: 'id', id });
    refreshCompanyCache(cache, ttlSeconds, id, current);
    if (current && !current.deletedAt) refilled++;
    else dropped++;
  }
  return { dropped, refilled };
}
