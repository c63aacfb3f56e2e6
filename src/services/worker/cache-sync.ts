// Cache sync across hosts: a change announced by any host (see infra/db/notify.ts) reaches this
// host's worker, which caches the new version of each changed company (so the next read is a
// hit, and a read that began before the change cannot cache its older copy afterwards: see
// fillCompanyCache), and drops every company entry when a change names no ids (an import chunk).
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

/**
 * Apply one announced change. `beforeDropAll` runs before a full drop: the worker stops vouching
 * for entries stored before now (a read that began before the change may still store its copy).
 */
export async function applyChange(cache: FileCache, read: SqlReader, ttlSeconds: number, change: Change, beforeDropAll: () => void): Promise<CacheSyncResult> {
  if (change.companies === 'all') {
    beforeDropAll();
    return { dropped: dropAllCompanies(cache), refilled: 0 };
  }
  let refilled = 0;
  for (const id of change.companies ?? []) {
    refreshCompanyCache(cache, ttlSeconds, id, await findCompany(read, { kind: 'id', id }));
    refilled++;
  }
  return { dropped: 0, refilled };
}
