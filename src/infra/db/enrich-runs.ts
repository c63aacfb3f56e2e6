// Enrichment runs and their per-company items (the resume checkpoint), and field provenance.
// Portable SQL with `?` placeholders, executed inside the caller's transaction.
import type { SqlReader, StoreTx } from './store.js';

export type EnrichRunState = 'running' | 'cancelled' | 'completed' | 'completed_with_failures' | 'abandoned';
export type EnrichItemStatus = 'pending' | 'enriched' | 'unchanged' | 'not_found' | 'failed' | 'skipped';

export interface EnrichRunRow {
  id: number;
  identity: string;
  selection: Record<string, unknown>;
  state: EnrichRunState;
  total: number;
  requests: number;
  cacheHits: number;
  lockOwner: string | null;
  heartbeatAt: string | null;
  actor: string;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

const iso = (v: unknown): string | null => (v == null ? null : v instanceof Date ? v.toISOString() : String(v));
const json = (v: unknown): Record<string, unknown> => (typeof v === 'string' ? JSON.parse(v) : (v as Record<string, unknown>));

function toRun(r: Record<string, unknown>): EnrichRunRow {
  return {
    id: Number(r.id),
    identity: String(r.identity),
    selection: json(r.selection),
    state: String(r.state) as EnrichRunState,
    total: Number(r.total),
    requests: Number(r.requests),
    cacheHits: Number(r.cache_hits),
    lockOwner: r.lock_owner == null ? null : String(r.lock_owner),
    heartbeatAt: iso(r.heartbeat_at),
    actor: String(r.actor),
    startedAt: iso(r.started_at)!,
    updatedAt: iso(r.updated_at)!,
    finishedAt: iso(r.finished_at),
  };
}

async function exec(tx: StoreTx, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await tx.em.getConnection().execute(sql, params, 'all', tx.em.getTransactionContext())) as Record<string, unknown>[];
}

export async function findUnfinishedRun(read: SqlReader, identity: string): Promise<EnrichRunRow | undefined> {
  const rows = await read.all<Record<string, unknown>>(`select * from enrich_run where identity = ? and state in ('running','cancelled') order by id desc`, [identity]);
  return rows[0] && toRun(rows[0]);
}

export async function getRun(read: SqlReader, id: number): Promise<EnrichRunRow | undefined> {
  const rows = await read.all<Record<string, unknown>>('select * from enrich_run where id = ?', [id]);
  return rows[0] && toRun(rows[0]);
}

export async function listRuns(read: SqlReader, limit: number): Promise<EnrichRunRow[]> {
  return (await read.all<Record<string, unknown>>('select * from enrich_run order by id desc limit ?', [limit])).map(toRun);
}

export async function createRun(
  tx: StoreTx,
  run: { identity: string; selection: Record<string, unknown>; owner: string; actor: string; now: string },
): Promise<number> {
  const rows = await exec(
    tx,
    `insert into enrich_run (identity, selection, state, lock_owner, heartbeat_at, actor, started_at, updated_at)
     values (?, ?, 'running', ?, ?, ?, ?, ?) returning id`,
    [run.identity, JSON.stringify(run.selection), run.owner, run.now, run.actor, run.now, run.now],
  );
  return Number(rows[0]!.id);
}

/** Add companies to a new run's checkpoint (duplicates ignored). */
export async function addItems(tx: StoreTx, runId: number, companyIds: number[]): Promise<void> {
  for (let i = 0; i < companyIds.length; i += 500) {
    const part = companyIds.slice(i, i + 500);
    await exec(
      tx,
      `insert into enrich_run_item (run_id, company_id) values ${part.map(() => '(?, ?)').join(', ')} on conflict do nothing returning run_id`,
      part.flatMap((id) => [runId, id]),
    );
  }
}

export async function setTotal(tx: StoreTx, runId: number): Promise<number> {
  const rows = await exec(tx, 'update enrich_run set total = (select count(*) from enrich_run_item where run_id = ?) where id = ? returning total', [runId, runId]);
  return Number(rows[0]!.total);
}

/**
 * Take a run's lock: free, ours, stale (heartbeat before `staleBefore`), or held by
 * `deadOwner` (a process on this host that no longer exists). False when another run holds it.
 */
export async function claimRun(tx: StoreTx, id: number, owner: string, now: string, staleBefore: string, deadOwner: string | null): Promise<boolean> {
  const rows = await exec(
    tx,
    `update enrich_run set lock_owner = ?, heartbeat_at = ?, state = 'running', updated_at = ?, finished_at = null
     where id = ? and state in ('running','cancelled') and (lock_owner is null or lock_owner = ? or lock_owner = ? or heartbeat_at < ?) returning id`,
    [owner, now, now, id, owner, deadOwner ?? owner, staleBefore],
  );
  return rows.length === 1;
}

export async function heartbeat(tx: StoreTx, id: number, owner: string, now: string, counters: { requests: number; cacheHits: number }): Promise<void> {
  await exec(
    tx,
    'update enrich_run set heartbeat_at = ?, updated_at = ?, requests = requests + ?, cache_hits = cache_hits + ? where id = ? and lock_owner = ? returning id',
    [now, now, counters.requests, counters.cacheHits, id, owner],
  );
}

export async function releaseRun(
  tx: StoreTx,
  id: number,
  owner: string,
  state: EnrichRunState,
  now: string,
  counters: { requests: number; cacheHits: number },
): Promise<void> {
  const finished = state === 'completed' || state === 'completed_with_failures' || state === 'abandoned';
  await exec(
    tx,
    `update enrich_run set state = ?, lock_owner = null, heartbeat_at = null, updated_at = ?, finished_at = ?,
       requests = requests + ?, cache_hits = cache_hits + ? where id = ? and lock_owner = ? returning id`,
    [state, now, finished ? now : null, counters.requests, counters.cacheHits, id, owner],
  );
}

export async function abandonRun(tx: StoreTx, id: number, now: string): Promise<void> {
  await exec(tx, `update enrich_run set state = 'abandoned', lock_owner = null, updated_at = ?, finished_at = ? where id = ? returning id`, [now, now, id]);
}

export async function pendingItems(read: SqlReader, runId: number, afterCompanyId: number, limit: number): Promise<number[]> {
  const rows = await read.all<{ company_id: number }>(
    `select company_id from enrich_run_item where run_id = ? and status = 'pending' and company_id > ? order by company_id limit ?`,
    [runId, afterCompanyId, limit],
  );
  return rows.map((r) => Number(r.company_id));
}

export async function markItem(tx: StoreTx, runId: number, companyId: number, status: EnrichItemStatus, detail: unknown, now: string): Promise<void> {
  await exec(tx, 'update enrich_run_item set status = ?, detail = ?, done_at = ? where run_id = ? and company_id = ? returning run_id', [
    status,
    detail === undefined || detail === null ? null : JSON.stringify(detail),
    now,
    runId,
    companyId,
  ]);
}

export async function itemCounts(read: SqlReader, runId: number): Promise<Record<EnrichItemStatus, number>> {
  const rows = await read.all<{ status: string; n: number }>('select status, count(*) as n from enrich_run_item where run_id = ? group by status', [runId]);
  const out: Record<EnrichItemStatus, number> = { pending: 0, enriched: 0, unchanged: 0, not_found: 0, failed: 0, skipped: 0 };
  for (const r of rows) out[r.status as EnrichItemStatus] = Number(r.n);
  return out;
}

export async function failedItems(read: SqlReader, runId: number, limit: number): Promise<{ companyId: number; detail: Record<string, unknown> | null }[]> {
  const rows = await read.all<{ company_id: number; detail: string | null }>(
    `select company_id, detail from enrich_run_item where run_id = ? and status = 'failed' order by company_id limit ?`,
    [runId, limit],
  );
  return rows.map((r) => ({ companyId: Number(r.company_id), detail: r.detail == null ? null : JSON.parse(r.detail) }));
}

/** Field -> the JSON text enrichment last wrote there. */
export async function provenanceOf(read: SqlReader, companyId: number): Promise<Map<string, string>> {
  const rows = await read.all<{ field: string; value: string }>('select field, value from company_enrichment where company_id = ?', [companyId]);
  return new Map(rows.map((r) => [r.field, r.value]));
}

export async function recordProvenance(tx: StoreTx, companyId: number, values: Record<string, unknown>, runId: number, now: string): Promise<void> {
  for (const [field, value] of Object.entries(values)) {
    await exec(
      tx,
      `insert into company_enrichment (company_id, field, value, run_id, enriched_at) values (?, ?, ?, ?, ?)
       on conflict (company_id, field) do update set value = excluded.value, run_id = excluded.run_id, enriched_at = excluded.enriched_at returning company_id`,
      [companyId, field, JSON.stringify(value ?? null), runId, now],
    );
  }
}
