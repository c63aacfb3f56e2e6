// Raw, dialect-neutral table access for `db copy`: the tables of a schema (discovered, so a table
// a later migration adds is copied too), their columns and foreign-key order, rows read as text
// in one canonical form (ISO-8601 UTC times, trimmed decimals, 1/0 booleans, JSON text) from a
// consistent snapshot, bulk writes (COPY on PostgreSQL, prepared inserts on SQLite), sequences.
import { StringDecoder } from 'node:string_decoder';
import type { StoreLocation } from './location.js';

/** A row as canonical text values (null for SQL NULL; binary as lower-case hex), in column order. */
export type TextRow = (string | null)[];

/** Bookkeeping tables every store creates for itself: never copied. */
export const OWN_TABLES = new Set(['companyctl_migrations']);

export interface Column {
  name: string;
  /** The database's type name, lower case (text, integer, timestamp with time zone, jsonb, ...). */
  type: string;
}

export interface RawStore {
  dialect: StoreLocation['dialect'];
  tables(): Promise<string[]>;
  columns(table: string): Promise<Column[]>;
  /** [table, table it references] pairs. */
  foreignKeys(): Promise<[string, string][]>;
  count(table: string): Promise<number>;
  /** Start a read snapshot (every later read sees one state of the store). */
  beginSnapshot(): Promise<void>;
  endSnapshot(): Promise<void>;
  rows(table: string, columns: Column[]): AsyncIterable<TextRow>;
  /** Everything written between begin and commit lands at once or not at all. */
  beginWrite(): Promise<void>;
  /** `columns` are the target's own (their types decide how binary values are written). */
  write(table: string, columns: Column[], rows: AsyncIterable<TextRow>, seen: (row: TextRow) => void): Promise<number>;
  deleteAll(table: string): Promise<void>;
  /** Drop a table's secondary indexes (a bulk load builds each once, after the rows); returns how to build them again. */
  dropIndexes(table: string): Promise<string[]>;
  execute(sql: string): Promise<void>;
  /** Set every id sequence past the ids copied (and past `floors`, the source's own sequences). */
  resetSequences(floors: Map<string, number>): Promise<void>;
  /** The next-id floor of each table's generated ids: `table.column` -> last value used. */
  sequences(): Promise<Map<string, number>>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  close(): Promise<void>;
}

const q = (name: string) => `"${name.replaceAll('"', '""')}"`;

export async function openRaw(loc: StoreLocation): Promise<RawStore> {
  return loc.dialect === 'sqlite' ? openRawSqlite(loc.target) : openRawPg(loc.target);
}

// ---- SQLite ----

async function openRawSqlite(path: string): Promise<RawStore> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path);
  const tables = () => (db.prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`).all() as { name: string }[]).map((r) => r.name);
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  const text = (v: unknown): string | null => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? v.toString('hex') : String(v));
  return {
    dialect: 'sqlite',
    tables: async () => tables(),
    async columns(table) {
      return (db.prepare(`select name, type from pragma_table_info(?) order by cid`).all(table) as { name: string; type: string }[]).map((c) => ({ name: c.name, type: c.type.toLowerCase() }));
    },
    async foreignKeys() {
      const out: [string, string][] = [];
      for (const t of tables()) {
        for (const fk of db.prepare(`select "table" as ref from pragma_foreign_key_list(?)`).all(t) as { ref: string }[]) out.push([t, fk.ref]);
      }
      return out;
    },
    async count(table) {
      return Number((db.prepare(`select count(*) as n from ${q(table)}`).get() as { n: number }).n);
    },
    async beginSnapshot() {
      db.prepare('begin').run();
      // A read transaction takes its snapshot at the first read.
      db.prepare('select count(*) from sqlite_master').get();
    },
    async endSnapshot() {
      if (db.inTransaction) db.prepare('commit').run();
    },
    async *rows(table, columns) {
      const list = columns.map((c) => q(c.name)).join(', ');
      let page: import('better-sqlite3').Statement;
      // Pages by rowid: one native call per page of rows instead of one per row; rows holding
      // blobs (queued inputs, up to 1 MiB each) come a few at a time.
      const size = columns.some((c) => c.type === 'blob') ? 8 : 5000;
      try {
        page = db.prepare(`select rowid, ${list} from ${q(table)} where rowid > ? order by rowid limit ${size}`).raw(true);
      } catch {
        for (const r of db.prepare(`select ${list} from ${q(table)}`).raw(true).iterate() as Iterable<unknown[]>) yield r.map(text);
        return;
      }
      let after: unknown = -Infinity;
      for (;;) {
        const rows = page.all(after) as unknown[][];
        for (const r of rows) {
          const out: TextRow = new Array(r.length - 1);
          for (let i = 1; i < r.length; i++) out[i - 1] = text(r[i]);
          yield out;
        }
        if (rows.length < size) return;
        after = rows[rows.length - 1]![0];
      }
    },
    async beginWrite() {
      db.pragma('journal_mode = WAL');
      db.prepare('begin immediate').run();
    },
    async write(table, columns, rows, seen) {
      const st = db.prepare(`insert into ${q(table)} (${columns.map((c) => q(c.name)).join(', ')}) values (${columns.map(() => '?').join(', ')})`);
      const blobs = columns.flatMap((c, i) => (c.type === 'blob' ? [i] : []));
      let n = 0;
      for await (const r of rows) {
        seen(r);
        if (blobs.length) {
          const values: unknown[] = [...r];
          for (const i of blobs) if (r[i] !== null) values[i] = Buffer.from(r[i]!, 'hex');
          st.run(values);
        } else {
          st.run(r);
        }
        n++;
      }
      return n;
    },
    async deleteAll(table) {
      db.prepare(`delete from ${q(table)}`).run();
    },
    async dropIndexes(table) {
      const rows = db.prepare(`select name, sql from sqlite_master where type = 'index' and tbl_name = ? and sql is not null`).all(table) as { name: string; sql: string }[];
      for (const r of rows) db.prepare(`drop index ${q(r.name)}`).run();
      return rows.map((r) => r.sql);
    },
    async execute(sql) {
      db.prepare(sql).run();
    },
    async sequences() {
      const out = new Map<string, number>();
      const has = db.prepare(`select 1 from sqlite_master where name = 'sqlite_sequence'`).get();
      if (has) for (const r of db.prepare('select name, seq from sqlite_sequence').all() as { name: string; seq: number }[]) out.set(r.name, Number(r.seq));
      return out;
    },
    async resetSequences(floors) {
      // Rowid tables continue from max(id) by themselves; AUTOINCREMENT ones keep a floor.
      if (!db.prepare(`select 1 from sqlite_master where name = 'sqlite_sequence'`).get()) return;
      for (const [table, floor] of floors) {
        db.prepare('update sqlite_sequence set seq = max(seq, ?) where name = ?').run(floor, table);
      }
    },
    async commit() {
      if (db.inTransaction) db.prepare('commit').run();
    },
    async rollback() {
      if (db.inTransaction) db.prepare('rollback').run();
    },
    async close() {
      db.close();
    },
  };
}

// ---- PostgreSQL ----

/** The column as canonical text (what SQLite holds for the same value). */
function pgExpr(c: Column): string {
  const col = q(c.name);
  if (c.type === 'timestamp with time zone') return `to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
  if (c.type === 'numeric') return `trim_scale(${col})::text`;
  if (c.type === 'boolean') return `${col}::int::text`;
  if (c.type === 'character') return `rtrim(${col})`;
  if (c.type === 'bytea') return `encode(${col}, 'hex')`;
  return `${col}::text`;
}

async function openRawPg(url: string): Promise<RawStore> {
  const pg = (await import('pg')).default;
  const { from: copyFrom, to: copyTo } = await import('pg-copy-streams');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const all = async <T>(sql: string, params: unknown[] = []) => (await client.query(sql, params)).rows as T[];
  return {
    dialect: 'postgresql',
    async tables() {
      return (
        await all<{ table_name: string }>(`select table_name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`)
      ).map((r) => r.table_name);
    },
    async columns(table) {
      return (
        await all<{ column_name: string; data_type: string }>(
          `select column_name, data_type from information_schema.columns where table_schema = current_schema() and table_name = $1 order by ordinal_position`,
          [table],
        )
      ).map((c) => ({ name: c.column_name, type: c.data_type.toLowerCase() }));
    },
    async foreignKeys() {
      const rows = await all<{ t: string; ref: string }>(
        `select c.conrelid::regclass::text as t, c.confrelid::regclass::text as ref from pg_constraint c
         join pg_namespace n on n.oid = c.connamespace where c.contype = 'f' and n.nspname = current_schema()`,
      );
      return rows.map((r) => [r.t.replaceAll('"', ''), r.ref.replaceAll('"', '')]);
    },
    async count(table) {
      return Number((await all<{ n: string }>(`select count(*) as n from ${q(table)}`))[0]!.n);
    },
    async beginSnapshot() {
      await client.query('begin isolation level repeatable read read only');
    },
    async endSnapshot() {
      await client.query('commit');
    },
    async *rows(table, columns) {
      const stream = client.query(copyTo(`copy (select ${columns.map(pgExpr).join(', ')} from ${q(table)}) to stdout`));
      // A chunk may end inside a multi-byte character: the decoder keeps its first bytes for the next.
      const decoder = new StringDecoder('utf8');
      let rest = '';
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const text = rest + decoder.write(chunk);
        const lines = text.split('\n');
        rest = lines.pop()!;
        for (const line of lines) yield parseCopyLine(line);
      }
      rest += decoder.end();
      if (rest !== '') yield parseCopyLine(rest);
    },
    async beginWrite() {
      await client.query('begin');
    },
    async write(table, columns, rows, seen) {
      const sink = client.query(copyFrom(`copy ${q(table)} (${columns.map((c) => q(c.name)).join(', ')}) from stdin`));
      const done = new Promise<void>((resolve, reject) => {
        sink.on('finish', resolve);
        sink.on('error', reject);
      });
      const binary = columns.flatMap((c, i) => (c.type === 'bytea' ? [i] : []));
      let n = 0;
      let buf = '';
      const flush = async () => {
        if (buf === '') return;
        const ok = sink.write(buf);
        buf = '';
        if (!ok) await new Promise<void>((resolve, reject) => (sink.once('drain', resolve), sink.once('error', reject)));
      };
      try {
        for await (const r of rows) {
          seen(r);
          if (binary.length) {
            const values = [...r];
            for (const i of binary) if (r[i] !== null) values[i] = `\\x${r[i]}`;
            buf += encodeCopyLine(values);
          } else {
            buf += encodeCopyLine(r);
          }
          n++;
          if (buf.length > 256 * 1024) await flush();
        }
        await flush();
        sink.end();
      } catch (e) {
        sink.destroy(e as Error);
        throw e;
      }
      await done;
      return n;
    },
    async deleteAll(table) {
      await client.query(`delete from ${q(table)}`);
    },
    async dropIndexes(table) {
      // Not the indexes behind primary keys and unique constraints (foreign keys may need them).
      const rows = await all<{ name: string; def: string }>(
        `select i.relname as name, pg_get_indexdef(x.indexrelid) as def from pg_index x
         join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid join pg_namespace n on n.oid = t.relnamespace
         where n.nspname = current_schema() and t.relname = $1 and not exists (select 1 from pg_constraint c where c.conindid = x.indexrelid)`,
        [table],
      );
      for (const r of rows) await client.query(`drop index ${q(r.name)}`);
      return rows.map((r) => r.def);
    },
    async execute(sql) {
      await client.query(sql);
    },
    async sequences() {
      const out = new Map<string, number>();
      for (const s of await generatedColumns(all)) {
        const r = await all<{ v: string | null }>(`select pg_sequence_last_value(pg_get_serial_sequence($1, $2)) as v`, [q(s.table), s.column]);
        if (r[0]?.v != null) out.set(s.table, Number(r[0].v));
      }
      return out;
    },
    async resetSequences(floors) {
      for (const s of await generatedColumns(all)) {
        await client.query(
          `select setval(pg_get_serial_sequence($1, $2), greatest(coalesce((select max(${q(s.column)}) from ${q(s.table)}), 0), $3::bigint, 1), (coalesce((select max(${q(s.column)}) from ${q(s.table)}), 0) > 0 or $3::bigint > 0))`,
          [q(s.table), s.column, floors.get(s.table) ?? 0],
        );
      }
    },
    async commit() {
      await client.query('commit');
    },
    async rollback() {
      await client.query('rollback').catch(() => undefined);
    },
    async close() {
      await client.end();
    },
  };
}

async function generatedColumns(all: <T>(sql: string, params?: unknown[]) => Promise<T[]>): Promise<{ table: string; column: string }[]> {
  return (
    await all<{ table_name: string; column_name: string }>(
      `select table_name, column_name from information_schema.columns
       where table_schema = current_schema() and (is_identity = 'YES' or column_default like 'nextval(%')`,
    )
  ).map((r) => ({ table: r.table_name, column: r.column_name }));
}

// ---- COPY text format ----

const UNESCAPE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };

export function parseCopyLine(line: string): TextRow {
  return line.split('\t').map((f) => (f === '\\N' ? null : f.includes('\\') ? f.replace(/\\(.)/g, (_m, c: string) => UNESCAPE[c] ?? c) : f));
}

export function encodeCopyLine(row: TextRow): string {
  let out = '';
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (i > 0) out += '\t';
    out += v === null || v === undefined ? '\\N' : /[\\\t\n\r]/.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : v;
  }
  return `${out}\n`;
}

// ---- checksums ----

/** JSON text in one form whatever the dialect stored (jsonb reorders keys and adds spaces). */
function canonical(v: string | null): string {
  if (v === null) return '\u0000';
  const c = v.charCodeAt(0);
  if (c === 0x5b || c === 0x7b) {
    try {
      return JSON.stringify(sortKeys(JSON.parse(v)));
    } catch {
      return v;
    }
  }
  return v;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

/**
 * An order-independent checksum of a table's rows: the sum (mod 2^64) of a 64-bit hash of each
 * row (two 32-bit murmur-style lanes). It checks a copy against its source, not an adversary.
 */
export class TableChecksum {
  rows = 0;
  private hi = 0;
  private lo = 0;

  add(row: TextRow): void {
    let text = '';
    for (let i = 0; i < row.length; i++) text += (i ? '\u0001' : '') + canonical(row[i]!);
    let h1 = 0xdeadbeef ^ text.length;
    let h2 = 0x41c6ce57 ^ text.length;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    const lo = this.lo + (h1 >>> 0);
    this.lo = lo % 4294967296;
    this.hi = (this.hi + (h2 >>> 0) + (lo >= 4294967296 ? 1 : 0)) % 4294967296;
    this.rows++;
  }

  hex(): string {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0');
  }
}
