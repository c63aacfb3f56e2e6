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

export interface ExistingRow {
  id: number;
  version: number;
  values: Value[];
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
} as const;

/** Companies an import has written or matched so far (its in-file duplicate check). */
export interface SeenCompanies {
  has(id: number): boolean;
  add(id: number): void;
}

export interface RowBatch {
  /** ROW_COLUMNS.length values a row. */
  values: Value[];
  /** Per row: which columns the input gave (bit i = ROW_COLUMNS[i]); only those are compared and updated. */
  masks: number[];
}

export interface ImportWriter {
  /** Live companies by natural key; `keys` are the key values (registration: [country, number]). */
  findByKey(kind: KeyKind, keys: string[][]): Promise<Map<string, ExistingRow>>;
  findById(ids: number[]): Promise<Map<number, ExistingRow & { deleted: boolean }>>;
  /** External ids held, as "source:id" -> company id. */
  externalHolders(pairs: [string, string][]): Promise<Map<string, number>>;
  externalIdsOf(companyIds: number[]): Promise<Map<number, [string, string][]>>;
  /** Insert rows; per row the new id, or null when a unique key is already held. */
  insert(rows: Value[][], now: string): Promise<(number | null)[]>;
  update(rows: { id: number; version: number; values: Value[] }[], now: string): Promise<UpdateOutcome[]>;
  /** Replace the external ids of these companies (an empty list removes them all). */
  setExternalIds(items: { companyId: number; ids: [string, string][] }[]): Promise<void>;
  /**
   * SQLite's bulk path: each row looked up by its key, compared in SQL, then inserted, updated
   * or left alone, one prepared statement at a time and nothing read back into JS but ids.
   * `insertFirst` tries the insert before the lookup (for runs of new rows). Undefined on
   * PostgreSQL, whose batch statements are faster than any per-row path.
   */
  upsertRows?(kind: KeyKind, rows: RowBatch, now: string, seen: SeenCompanies, insertFirst: boolean): { outcomes: Uint8Array; ids: Float64Array };
}

export const keyOf = (parts: readonly unknown[]) => parts.map(String).join('\u0000');
export const isUnique = (e: unknown) => /UNIQUE constraint failed|duplicate key value|unique/i.test(String((e as Error)?.message)) || (e as { code?: string })?.code === '23505';

/** The import's writer on the connection of this chunk's transaction. */
export async function openImportWriter(tx: StoreTx): Promise<ImportWriter> {
  const conn = await connectionOf(tx);
  if (tx.dialect === 'sqlite') return (await import('./import-write-sqlite.js')).sqliteWriter(conn as Database);
  return (await import('./import-write-pg.js')).postgresWriter(conn as PgClient);
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

export interface PgClient {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
}
