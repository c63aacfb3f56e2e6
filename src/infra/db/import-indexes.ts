// Bulk loads: the company indexes no write depends on are dropped for a large import and
// built once at the end; a note in store_meta lets a crashed load be repaired. Both dialects.
import { rawSqlite } from './import-write.js';
import type { SqlReader, StoreTx } from './store.js';

async function exec(tx: StoreTx, sql: string, params: unknown[] = []): Promise<void> {
  await tx.em.getConnection().execute(sql, params, 'run', tx.em.getTransactionContext());
}

/**
 * The company indexes no write depends on (the unique ones stay: they decide inserts and
 * clashes). A bulk load into a small table drops them and builds them once at the end: one
 * sort instead of a million random B-tree inserts (PERF-NOTES / bench:import). Same SQL as
 * migration 0001 (a test compares them with sqlite_master).
 */
export const DEFERRABLE_INDEXES = [
  { name: 'company_name_lower', sql: 'create index company_name_lower on company (lower(name), id)' },
  { name: 'company_updated', sql: 'create index company_updated on company (updated_at, id)' },
  { name: 'company_country', sql: 'create index company_country on company (country)' },
] as const;
const DEFERRED_META = 'import_deferred_indexes';

/** Drop the deferrable indexes, noting it in store_meta in the same transaction (a crash leaves a note to repair from). */
export async function deferIndexes(tx: StoreTx, jobId: number): Promise<void> {
  for (const ix of DEFERRABLE_INDEXES) await exec(tx, `drop index if exists ${ix.name}`);
  await exec(tx, 'insert into store_meta (key, value) values (?, ?) on conflict (key) do update set value = excluded.value', [DEFERRED_META, String(jobId)]);
}

/** The import job whose bulk load dropped the deferrable indexes, if they are dropped. */
export async function deferredBy(read: SqlReader): Promise<number | undefined> {
  const rows = await read.all<{ value: string }>('select value from store_meta where key = ?', [DEFERRED_META]);
  return rows.length ? Number(rows[0]!.value) : undefined;
}

/**
 * Build the deferrable indexes that are missing (after a bulk load, or a crash in one); with
 * `only`, just that one (and the note stays). Returns the names built.
 */
export async function restoreIndexes(tx: StoreTx, only?: string): Promise<string[]> {
  const db = await rawSqlite(tx);
  const names = db
    ? (db.prepare("select name from sqlite_master where type = 'index' and tbl_name = 'company'").pluck().all() as string[])
    : (await tx.read.all<{ indexname: string }>("select indexname from pg_indexes where tablename = 'company' and schemaname = current_schema()")).map((r) => r.indexname);
  const have = new Set(names);
  if (only) for (const ix of DEFERRABLE_INDEXES) if (ix.name !== only) have.add(ix.name);
  const built: string[] = [];
  // SQLite: the sort behind CREATE INDEX takes up to cache_size of memory on top of the page
  // cache: a small one keeps the import's peak RSS where the load put it (the sort spills to disk).
  const cache = db?.pragma('cache_size', { simple: true }) as number | undefined;
  db?.pragma('cache_size = -16384');
  try {
    for (const ix of DEFERRABLE_INDEXES) {
      if (have.has(ix.name)) continue;
      await exec(tx, ix.sql);
      built.push(ix.name);
    }
  } finally {
    if (db) db.pragma(`cache_size = ${cache}`);
  }
  if (!only) await exec(tx, 'delete from store_meta where key = ?', [DEFERRED_META]);
  return built;
}

/** The highest company id (0 for an empty table): how large the table is, cheaply. */
export async function highestCompanyId(read: SqlReader): Promise<number> {
  const rows = await read.all<{ n: number | null }>('select max(id) as n from company');
  return Number(rows[0]?.n ?? 0);
}
