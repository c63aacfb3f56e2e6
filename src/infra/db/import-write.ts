// Bulk company writes for imports, inside the MikroORM transaction of one chunk, on the raw
// connection that transaction holds (PERF-NOTES: MikroORM inlines values and never reuses a
// statement; a prepared statement reused per row on better-sqlite3, and one array-bound
// statement per chunk on PostgreSQL, are what make a 1M-row import fast).
// Values are in the import's row order (import-pipeline.ts ROW_FIELDS) and representation:
// strings and numbers, tags as JSON text, amounts as canonical decimals.
import type { Database } from 'better-sqlite3';
import type { SqlReader, StoreTx } from './store.js';

export type Value = string | number | null;

/** Column names in ROW_FIELDS order. */
export const ROW_COLUMNS = [
  'name',
  'legal_name',
  'domain',
  'website',
  'registration_number',
  'registration_country',
  'lei',
  'industry',
  'employees',
  'revenue_amount',
  'revenue_currency',
  'address_line1',
  'address_line2',
  'city',
  'region',
  'postcode',
  'country',
  'status',
  'incorporation_date',
  'tags',
] as const;
export const COLS = ROW_COLUMNS.join(', ');

export type KeyKind = 'domain' | 'lei' | 'registration';

/** The import key as the writer uses it: a natural key, or the external ids (of one source). */
export interface WriterKey {
  kind: KeyKind | 'external';
  source?: string;
}

export type UpdateOutcome = 'ok' | 'conflict' | 'stale';

/** Per-row results of ImportWriter.upsertRows. */
export const ROW = {
  INSERTED: 1,
  UPDATED: 2,
  UNCHANGED: 3,
  /** The key leads to a company an earlier row of this import already wrote or matched (ids[i]). */
  DUPLICATE: 4,
  /** New by its import key, but another unique key (domain, LEI, registration) is held. */
  INSERT_CLASH: 5,
  /** The update of company ids[i] would take a unique key another company holds. */
  UPDATE_CLASH: 6,
  /** Company ids[i] changed between the lookup and the update. */
  STALE: 7,
  /** External key: the row's ids belong to several companies (details: companies). */
  EXT_DIFFERENT: 8,
  /** External key: the row's id belongs to soft-deleted company ids[i]. */
  EXT_DELETED: 9,
  /** An external id of the row (details: pair) is held by company ids[i]. */
  EXT_HELD: 10,
  /** An external id of the row (details: pair) is given by the batch's row ids[i] too. */
  EXT_ALSO_GIVEN: 11,
} as const;

export interface RowDetail {
  pair?: string;
  companies?: number[];
}

/** Companies an import has written or matched so far (its in-file duplicate check). */
export interface SeenCompanies {
  has(id: number): boolean;
  add(id: number): void;
}

export interface RowBatch {
  /** ROW_COLUMNS.length values a row. */
  values: Value[];
  /** Per row: which columns the input gave (bit i = ROW_COLUMNS[i], bit ROW_COLUMNS.length = external ids); only those are compared and updated. */
  masks: number[];
  /** Per row: external ids as JSON [[source, id], ...] sorted by source, or null when not given. */
  externalIds: (string | null)[];
}

/** SQLite's import writer, on the connection of the chunk's transaction. */
export interface ImportWriter {
  /** Insert one row (no OR IGNORE); the new id, or null when a unique key is already held. */
  insert(values: Value[], now: string): number | null;
  /**
   * Each row looked up by its key, compared in SQL, then inserted, updated or left alone, one
   * prepared statement at a time and nothing read back into JS but ids. `insertFirst` tries
   * the insert before the lookup (for runs of new rows).
   */
  upsertRows(key: WriterKey, rows: RowBatch, now: string, seen: SeenCompanies, insertFirst: boolean): { outcomes: Uint8Array; ids: Float64Array; details: Map<number, RowDetail> };
}

export const keyOf = (parts: readonly unknown[]) => parts.map(String).join('\u0000');
export const isUnique = (e: unknown) => /UNIQUE constraint failed|duplicate key value|unique/i.test(String((e as Error)?.message)) || (e as { code?: string })?.code === '23505';

/** The import's row writer on the SQLite connection of this chunk's transaction (PostgreSQL stages chunks: import-stage-pg.ts). */
export async function openImportWriter(tx: StoreTx): Promise<ImportWriter> {
  const db = await rawSqlite(tx);
  if (!db) throw new Error('openImportWriter: SQLite only');
  return (await import('./import-write-sqlite.js')).sqliteWriter(db);
}

/** The end of an import: SQLite's page cache back to its default size (see import-write-sqlite.ts). */
export async function releaseImportCache(tx: StoreTx): Promise<void> {
  const db = await rawSqlite(tx);
  if (db) (await import('./import-write-sqlite.js')).releaseImportCache(db);
}

/** The driver's own connection the transaction holds (a better-sqlite3 Database or a pg Client). */
export async function connectionOf(tx: StoreTx): Promise<unknown> {
  const trx = tx.em.getTransactionContext() as unknown as { client: { acquireConnection(): Promise<unknown> } };
  return trx.client.acquireConnection();
}

export async function rawSqlite(tx: StoreTx): Promise<Database | undefined> {
  return tx.dialect === 'sqlite' ? ((await connectionOf(tx)) as Database) : undefined;
}
