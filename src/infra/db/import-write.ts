// Bulk company writes for imports, inside the MikroORM transaction of one chunk, on the raw
// connection that transaction holds (PERF-NOTES: MikroORM inlines values and never reuses a
// statement; a prepared statement reused per row on better-sqlite3, and one array-bound
// statement per chunk on PostgreSQL, are what make a 1M-row import fast).
// Values are in the import's row order (import-pipeline.ts ROW_FIELDS) and representation:
// strings and numbers, tags as JSON text, amounts as canonical decimals.
import type { Database, Statement } from 'better-sqlite3';
import { normaliseAmount } from '../../domain/normalise.js';
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
const COLS = ROW_COLUMNS.join(', ');

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

const keyOf = (parts: readonly unknown[]) => parts.map(String).join('\u0000');

export async function openImportWriter(tx: StoreTx): Promise<ImportWriter> {
  const conn = await connectionOf(tx);
  if (tx.dialect === 'sqlite') {
    const db = conn as Database;
    if (!tuned.has(db)) {
      // A 64 MiB page cache for the unique indexes' pages (random keys touch all of them);
      // it is given back at the end of the import (releaseImportCache). 48 MiB cost 15% more time
      // on a fresh 1M-row load, 32 MiB 20% (bench:import).
      db.pragma('cache_size = -65536');
      tuned.add(db);
    }
    return sqliteWriter(db);
  }
  return postgresWriter(conn as PgClient);
}

// ---------------- SQLite: prepared statements, reused across chunks ----------------

const prepared = new WeakMap<Database, Map<string, Statement>>();
const tuned = new WeakSet<Database>();
function stmt(db: Database, sql: string): Statement {
  let m = prepared.get(db);
  if (!m) prepared.set(db, (m = new Map()));
  let s = m.get(sql);
  if (!s) m.set(sql, (s = db.prepare(sql)));
  return s;
}

const KEY_WHERE: Record<KeyKind, string> = {
  domain: 'domain = ?',
  lei: 'lei = ?',
  registration: 'registration_country = ? and registration_number = ?',
};

/** Column index of each key column in a row's values. */
const KEY_COLUMNS: Record<KeyKind, number[]> = {
  domain: [ROW_COLUMNS.indexOf('domain')],
  lei: [ROW_COLUMNS.indexOf('lei')],
  registration: [ROW_COLUMNS.indexOf('registration_country'), ROW_COLUMNS.indexOf('registration_number')],
};
const maskColumns = (mask: number): number[] => ROW_COLUMNS.flatMap((_, i) => (mask & (1 << i) ? [i] : []));

const isUnique = (e: unknown) => /UNIQUE constraint failed|duplicate key value|unique/i.test(String((e as Error)?.message)) || (e as { code?: string })?.code === '23505';

function sqliteWriter(db: Database): ImportWriter {
  const fromRaw = (r: unknown[]): ExistingRow => ({ id: Number(r[0]), version: Number(r[1]), values: r.slice(2) as Value[] });
  return {
    async findByKey(kind, keys) {
      const st = stmt(db, `select id, version, ${COLS} from company where ${KEY_WHERE[kind]} and deleted_at is null`).raw(true);
      const out = new Map<string, ExistingRow>();
      for (const k of keys) {
        const r = st.get(...k) as unknown[] | undefined;
        if (r) out.set(keyOf(k), fromRaw(r));
      }
      return out;
    },
    async findById(ids) {
      const st = stmt(db, `select id, version, ${COLS}, deleted_at from company where id = ?`).raw(true);
      const out = new Map<number, ExistingRow & { deleted: boolean }>();
      for (const id of ids) {
        const r = st.get(id) as unknown[] | undefined;
        if (r) out.set(id, { ...fromRaw(r.slice(0, -1)), deleted: r[r.length - 1] !== null });
      }
      return out;
    },
    async externalHolders(pairs) {
      const st = stmt(db, 'select company_id from company_external_id where source = ? and external_id = ?').pluck(true);
      const out = new Map<string, number>();
      for (const [s, id] of pairs) {
        const c = st.get(s, id) as number | undefined;
        if (c !== undefined) out.set(`${s}:${id}`, Number(c));
      }
      return out;
    },
    async externalIdsOf(companyIds) {
      const st = stmt(db, 'select source, external_id from company_external_id where company_id = ? order by source').raw(true);
      const out = new Map<number, [string, string][]>();
      for (const id of companyIds) out.set(id, st.all(id) as [string, string][]);
      return out;
    },
    async insert(rows, now) {
      const st = stmt(
        db,
        `insert into company (${COLS}, version, created_at, updated_at) values (${ROW_COLUMNS.map(() => '?').join(', ')}, 1, ?, ?) on conflict do nothing returning id`,
      ).pluck(true);
      return rows.map((values) => {
        const id = st.get(...values, now, now) as number | undefined;
        return id === undefined ? null : Number(id);
      });
    },
    async update(rows, now) {
      const st = stmt(db, `update company set ${ROW_COLUMNS.map((c) => `${c} = ?`).join(', ')}, version = version + 1, updated_at = ? where id = ? and version = ?`);
      return rows.map((r) => {
        try {
          return st.run(...r.values, now, r.id, r.version).changes === 1 ? 'ok' : 'stale';
        } catch (e) {
          if (isUnique(e)) return 'conflict';
          throw e;
        }
      });
    },
    async setExternalIds(items) {
      const del = stmt(db, 'delete from company_external_id where company_id = ?');
      const ins = stmt(db, 'insert into company_external_id (source, external_id, company_id) values (?, ?, ?)');
      for (const it of items) {
        del.run(it.companyId);
        for (const [s, id] of it.ids) ins.run(s, id, it.companyId);
      }
    },
    upsertRows(kind, rows, now, seen, insertFirst) {
      return sqliteUpsertRows(db, kind, rows, now, seen, insertFirst);
    },
  };
}

interface MaskPlan {
  look: Statement;
  lookArgs: Value[];
  update: Statement;
  updateArgs: Value[];
  columns: number[];
}
const plans = new WeakMap<Database, Map<string, MaskPlan>>();

/** The lookup (key -> id, version, whether the given columns already hold these values) and the update for one key kind and column mask. */
function maskPlan(db: Database, kind: KeyKind, mask: number): MaskPlan {
  let m = plans.get(db);
  if (!m) plans.set(db, (m = new Map()));
  const k = `${kind}:${mask}`;
  let p = m.get(k);
  if (!p) {
    // NDJSON records may each give other fields: keep the statements of the last few hundred shapes.
    if (m.size >= 256) m.clear();
    const columns = maskColumns(mask);
    const same = columns.length ? columns.map((c) => `${ROW_COLUMNS[c]} is ?`).join(' and ') : '1';
    const set = columns.map((c) => `${ROW_COLUMNS[c]} = ?`).join(', ');
    p = {
      columns,
      // Arguments in the order of their placeholders: the compared values, then the key.
      look: db.prepare(`select id, version, (${same}) as same from company where ${KEY_WHERE[kind]} and deleted_at is null`).raw(true),
      lookArgs: new Array(KEY_COLUMNS[kind].length + columns.length),
      update: db.prepare(`update company set ${set ? `${set}, ` : ''}version = version + 1, updated_at = ? where id = ? and version = ?`),
      updateArgs: new Array(columns.length + 3),
    };
    m.set(k, p);
  }
  return p;
}

function sqliteUpsertRows(db: Database, kind: KeyKind, rows: RowBatch, now: string, seen: SeenCompanies, insertFirst: boolean) {
  const width = ROW_COLUMNS.length;
  const n = rows.masks.length;
  const outcomes = new Uint8Array(n);
  const ids = new Float64Array(n);
  // OR IGNORE, without RETURNING: a statement that cannot abort needs no statement journal,
  // and RETURNING buffers its rows in a temporary table - together they doubled an insert's cost.
  const ins = stmt(db, `insert or ignore into company (${COLS}, version, created_at, updated_at) values (${ROW_COLUMNS.map(() => '?').join(', ')}, 1, ?, ?)`);
  const insArgs: Value[] = new Array(width + 2);
  insArgs[width] = now;
  insArgs[width + 1] = now;
  const keyCols = KEY_COLUMNS[kind];
  const { values } = rows;
  let plan: MaskPlan | undefined;
  let planMask = -1;
  const insert = (base: number): number => {
    for (let c = 0; c < width; c++) insArgs[c] = values[base + c]!;
    const r = ins.run(insArgs);
    return r.changes === 1 ? Number(r.lastInsertRowid) : 0;
  };
  for (let i = 0; i < n; i++) {
    const base = i * width;
    if (insertFirst) {
      const id = insert(base);
      if (id) {
        seen.add(id);
        outcomes[i] = ROW.INSERTED;
        ids[i] = id;
        continue;
      }
    }
    const mask = rows.masks[i]!;
    if (mask !== planMask) {
      plan = maskPlan(db, kind, mask);
      planMask = mask;
    }
    const p = plan!;
    let a = 0;
    for (const c of p.columns) p.lookArgs[a++] = values[base + c]!;
    for (const c of keyCols) p.lookArgs[a++] = values[base + c]!;
    const hit = p.look.get(p.lookArgs) as [number, number, number] | undefined;
    if (!hit) {
      const id = insertFirst ? 0 : insert(base);
      if (id) {
        seen.add(id);
        outcomes[i] = ROW.INSERTED;
        ids[i] = id;
      } else {
        outcomes[i] = ROW.INSERT_CLASH;
      }
      continue;
    }
    const id = Number(hit[0]);
    ids[i] = id;
    if (seen.has(id)) {
      outcomes[i] = ROW.DUPLICATE;
      continue;
    }
    seen.add(id);
    if (hit[2] === 1) {
      outcomes[i] = ROW.UNCHANGED;
      continue;
    }
    a = 0;
    for (const c of p.columns) p.updateArgs[a++] = values[base + c]!;
    p.updateArgs[a++] = now;
    p.updateArgs[a++] = id;
    p.updateArgs[a] = hit[1];
    try {
      outcomes[i] = p.update.run(p.updateArgs).changes === 1 ? ROW.UPDATED : ROW.STALE;
    } catch (e) {
      if (!isUnique(e)) throw e;
      outcomes[i] = ROW.UPDATE_CLASH;
    }
  }
  return { outcomes, ids };
}

// ---------------- SQLite bulk loads: secondary indexes built once at the end ----------------

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
  const db = (await rawSqlite(tx))!;
  for (const ix of DEFERRABLE_INDEXES) db.exec(`drop index if exists ${ix.name}`);
  db.prepare('insert into store_meta (key, value) values (?, ?) on conflict (key) do update set value = excluded.value').run(DEFERRED_META, String(jobId));
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
  if (!db) return [];
  const have = new Set((db.prepare("select name from sqlite_master where type = 'index' and tbl_name = 'company'").pluck().all() as string[]));
  if (only) for (const ix of DEFERRABLE_INDEXES) if (ix.name !== only) have.add(ix.name);
  const built: string[] = [];
  // The sort behind CREATE INDEX takes up to cache_size of memory on top of the page cache:
  // a small one keeps the import's peak RSS where the load put it (the sort spills to disk).
  const cache = db.pragma('cache_size', { simple: true }) as number;
  db.pragma('cache_size = -16384');
  try {
    for (const ix of DEFERRABLE_INDEXES) {
      if (have.has(ix.name)) continue;
      db.exec(ix.sql);
      built.push(ix.name);
    }
  } finally {
    db.pragma(`cache_size = ${cache}`);
  }
  if (!only) db.prepare('delete from store_meta where key = ?').run(DEFERRED_META);
  return built;
}

/**
 * The end of an import: the connection's page cache back to SQLite's default, so what runs
 * next on it (the event handlers' recount of 1M rows) reuses that memory instead of adding its
 * own on top (peak RSS).
 */
export async function releaseImportCache(tx: StoreTx): Promise<void> {
  const db = await rawSqlite(tx);
  if (!db || !tuned.has(db)) return;
  db.pragma('cache_size = -2000');
  tuned.delete(db);
}

/** The driver's own connection the transaction holds (a better-sqlite3 Database or a pg Client). */
export async function connectionOf(tx: StoreTx): Promise<unknown> {
  const trx = tx.em.getTransactionContext() as unknown as { client: { acquireConnection(): Promise<unknown> } };
  return trx.client.acquireConnection();
}

async function rawSqlite(tx: StoreTx): Promise<Database | undefined> {
  return tx.dialect === 'sqlite' ? ((await connectionOf(tx)) as Database) : undefined;
}

// ---------------- PostgreSQL: one array-bound statement per chunk ----------------

interface PgClient {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
}

const PG_TYPES: Record<(typeof ROW_COLUMNS)[number], string> = {
  name: 'text',
  legal_name: 'text',
  domain: 'text',
  website: 'text',
  registration_number: 'text',
  registration_country: 'text',
  lei: 'text',
  industry: 'text',
  employees: 'integer',
  revenue_amount: 'numeric',
  revenue_currency: 'text',
  address_line1: 'text',
  address_line2: 'text',
  city: 'text',
  region: 'text',
  postcode: 'text',
  country: 'text',
  status: 'text',
  incorporation_date: 'date',
  tags: 'jsonb',
};

/** PostgreSQL's representation -> the import's (canonical decimals, tags as JSON text). */
function pgValues(r: Record<string, unknown>): Value[] {
  return ROW_COLUMNS.map((c) => {
    const v = r[c];
    if (v === null || v === undefined) return null;
    if (c === 'tags') return JSON.stringify(v);
    if (c === 'revenue_amount') return normaliseAmount(String(v));
    if (c === 'employees') return Number(v);
    if (v instanceof Date) return v.toISOString().slice(0, 10);
    return String(v).trim();
  });
}

function columnArrays(rows: Value[][]): unknown[][] {
  return ROW_COLUMNS.map((_, i) => rows.map((r) => (r[i] === null || r[i] === undefined ? null : String(r[i]))));
}

function postgresWriter(client: PgClient): ImportWriter {
  const unnestCols = ROW_COLUMNS.map((c, i) => `$${i + 1}::text[]`).join(', ');
  const casts = ROW_COLUMNS.map((c) => `cast(v.${c} as ${PG_TYPES[c]})`).join(', ');
  const select = `c.id, c.version, ${ROW_COLUMNS.map((c) => `c.${c}`).join(', ')}`;
  const fromRow = (r: Record<string, unknown>): ExistingRow => ({ id: Number(r.id), version: Number(r.version), values: pgValues(r) });
  return {
    async findByKey(kind, keys) {
      const out = new Map<string, ExistingRow>();
      if (keys.length === 0) return out;
      let res;
      if (kind === 'registration') {
        res = await client.query(
          `select ${select} from company c join unnest($1::text[], $2::text[]) as k(cc, num) on c.registration_country = k.cc and c.registration_number = k.num where c.deleted_at is null`,
          [keys.map((k) => k[0]), keys.map((k) => k[1])],
        );
        for (const r of res.rows) out.set(keyOf([r.registration_country, r.registration_number]), fromRow(r));
      } else {
        res = await client.query(`select ${select} from company c where c.${kind} = any($1::text[]) and c.deleted_at is null`, [keys.map((k) => k[0])]);
        for (const r of res.rows) out.set(keyOf([r[kind]]), fromRow(r));
      }
      return out;
    },
    async findById(ids) {
      const out = new Map<number, ExistingRow & { deleted: boolean }>();
      if (ids.length === 0) return out;
      const res = await client.query(`select ${select}, c.deleted_at from company c where c.id = any($1::int[])`, [ids]);
      for (const r of res.rows) out.set(Number(r.id), { ...fromRow(r), deleted: r.deleted_at !== null });
      return out;
    },
    async externalHolders(pairs) {
      const out = new Map<string, number>();
      if (pairs.length === 0) return out;
      const res = await client.query(
        `select x.source, x.external_id, x.company_id from company_external_id x join unnest($1::text[], $2::text[]) as k(s, e) on x.source = k.s and x.external_id = k.e`,
        [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
      );
      for (const r of res.rows) out.set(`${r.source}:${r.external_id}`, Number(r.company_id));
      return out;
    },
    async externalIdsOf(companyIds) {
      const out = new Map<number, [string, string][]>(companyIds.map((id) => [id, []]));
      if (companyIds.length === 0) return out;
      const res = await client.query(`select company_id, source, external_id from company_external_id where company_id = any($1::int[]) order by source`, [companyIds]);
      for (const r of res.rows) out.get(Number(r.company_id))?.push([String(r.source), String(r.external_id)]);
      return out;
    },
    async insert(rows, now) {
      if (rows.length === 0) return [];
      // Ids are drawn first, so the rows that RETURNING leaves out are the ones that clashed.
      const ids = (
        await client.query(`select nextval(pg_get_serial_sequence('company', 'id')) as id from generate_series(1, $1::int)`, [rows.length])
      ).rows.map((r) => Number(r.id));
      const n = ROW_COLUMNS.length;
      const res = await client.query(
        `insert into company (id, ${COLS}, version, created_at, updated_at)
         select cast(v.id as integer), ${casts}, 1, cast($${n + 2} as timestamptz), cast($${n + 2} as timestamptz)
         from unnest(${unnestCols}, $${n + 1}::text[]) as v(${COLS}, id)
         on conflict do nothing returning id`,
        [...columnArrays(rows), ids.map(String), now],
      );
      const inserted = new Set(res.rows.map((r) => Number(r.id)));
      return ids.map((id) => (inserted.has(id) ? id : null));
    },
    async update(rows, now) {
      if (rows.length === 0) return [];
      const n = ROW_COLUMNS.length;
      const run = async (part: typeof rows) => {
        const res = await client.query(
          `update company c set ${ROW_COLUMNS.map((col) => `${col} = cast(v.${col} as ${PG_TYPES[col]})`).join(', ')},
             version = c.version + 1, updated_at = cast($${n + 3} as timestamptz)
           from unnest(${unnestCols}, $${n + 1}::int[], $${n + 2}::int[]) as v(${COLS}, id, version)
           where c.id = v.id and c.version = v.version returning c.id`,
          [...columnArrays(part.map((r) => r.values)), part.map((r) => r.id), part.map((r) => r.version), now],
        );
        return new Set(res.rows.map((r) => Number(r.id)));
      };
      await client.query('savepoint import_update');
      try {
        const done = await run(rows);
        await client.query('release savepoint import_update');
        return rows.map((r) => (done.has(r.id) ? 'ok' : 'stale'));
      } catch (e) {
        await client.query('rollback to savepoint import_update');
        if (!isUnique(e)) throw e;
      }
      // A key clash somewhere in the batch: row by row, each in its own savepoint.
      const out: UpdateOutcome[] = [];
      for (const r of rows) {
        await client.query('savepoint import_row');
        try {
          out.push((await run([r])).has(r.id) ? 'ok' : 'stale');
          await client.query('release savepoint import_row');
        } catch (e) {
          await client.query('rollback to savepoint import_row');
          if (!isUnique(e)) throw e;
          out.push('conflict');
        }
      }
      return out;
    },
    async setExternalIds(items) {
      if (items.length === 0) return;
      await client.query('delete from company_external_id where company_id = any($1::int[])', [items.map((i) => i.companyId)]);
      const flat = items.flatMap((i) => i.ids.map(([s, id]) => [s, id, i.companyId] as const));
      if (flat.length === 0) return;
      await client.query(
        'insert into company_external_id (source, external_id, company_id) select * from unnest($1::text[], $2::text[], $3::int[])',
        [flat.map((f) => f[0]), flat.map((f) => f[1]), flat.map((f) => f[2])],
      );
    },
  };
}
