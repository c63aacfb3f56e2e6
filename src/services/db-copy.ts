// `db copy`: move a whole store to an empty SQLite file or PostgreSQL database, either way.
// Every table of the source schema is copied (discovered, not listed), parents before children,
// from one snapshot, in one target transaction; ids, sequences, keys, sessions, events and the
// audit chain come along unchanged. Counts and checksums of every table are compared at the end.
import { existsSync, rmSync, statSync } from 'node:fs';
import { CompanyctlError } from '../errors.js';
import { OWN_TABLES, openRaw, TableChecksum, type Column, type RawStore } from '../infra/db/copy.js';
import type { StoreLocation } from '../infra/db/location.js';
import { migrateStore, openStore } from '../infra/db/store.js';

export interface TableReport {
  table: string;
  sourceRows: number;
  targetRows: number;
  sourceChecksum: string;
  targetChecksum: string;
  ok: boolean;
}

export interface CopyReport {
  from: string;
  to: string;
  tables: TableReport[];
  rows: number;
  ok: boolean;
}

/** Tables whose rows a fresh schema seeds by itself: replaced by the source's. */
const SEEDED = new Set(['store_meta', 'company_stat']);

export async function copyStore(
  source: StoreLocation,
  target: StoreLocation,
  opts: { progress?: (table: string, rows: number) => void; phase?: (name: string) => void } = {},
): Promise<CopyReport> {
  if (source.key === target.key) throw new CompanyctlError('COMPANYCTL_USAGE', '--to: the target is the store itself', { field: '--to' });
  // The source must be a store whose schema this code knows.
  await (await openStore(source)).close();
  const created = await assertEmptyTarget(target);
  let src: RawStore | undefined;
  let dst: RawStore | undefined;
  try {
    opts.phase?.('creating the schema in the target');
    await migrateStore(target);
    src = await openRaw(source);
    dst = await openRaw(target);
    const tables = (await src.tables()).filter((t) => !OWN_TABLES.has(t));
    const targetTables = new Set(await dst.tables());
    const missing = tables.filter((t) => !targetTables.has(t));
    if (missing.length) throw schemaMismatch(`the target has no table ${missing.join(', ')}`);
    const order = parentsFirst(tables, await dst.foreignKeys());
    const columns = new Map<string, { read: Column[]; check: Column[] }>();
    for (const t of order) {
      const read = await src.columns(t);
      const there = new Map((await dst.columns(t)).map((c) => [c.name, c]));
      const absent = read.filter((c) => !there.has(c.name));
      if (absent.length) throw schemaMismatch(`the target's ${t} has no column ${absent.map((c) => c.name).join(', ')}`);
      columns.set(t, { read, check: read.map((c) => there.get(c.name)!) });
    }

    const sums = new Map<string, TableChecksum>();
    await src.beginSnapshot();
    const floors = await src.sequences();
    await dst.beginWrite();
    try {
      for (const t of [...order].reverse()) if (SEEDED.has(t) && (await dst.count(t)) > 0) await dst.deleteAll(t);
      opts.phase?.('copying rows');
      for (const t of order) {
        const sum = new TableChecksum();
        sums.set(t, sum);
        // Indexes are built once after a table's rows, as pg_restore does: much faster than row by row.
        const indexes = await dst.dropIndexes(t);
        await dst.write(t, columns.get(t)!.check, src.rows(t, columns.get(t)!.read), (r) => sum.add(r));
        for (const sql of indexes) await dst.execute(sql);
        opts.progress?.(t, sum.rows);
      }
      await dst.resetSequences(floors);
      opts.phase?.('committing');
      await dst.commit();
    } catch (e) {
      await dst.rollback();
      throw e;
    } finally {
      await src.endSnapshot();
    }

    opts.phase?.('comparing counts and checksums');
    const reports: TableReport[] = [];
    for (const t of order) {
      const check = new TableChecksum();
      for await (const r of dst.rows(t, columns.get(t)!.check)) check.add(r);
      const s = sums.get(t)!;
      reports.push({ table: t, sourceRows: s.rows, targetRows: check.rows, sourceChecksum: s.hex(), targetChecksum: check.hex(), ok: s.rows === check.rows && s.hex() === check.hex() });
    }
    reports.sort((a, b) => a.table.localeCompare(b.table));
    return { from: source.display, to: target.display, tables: reports, rows: reports.reduce((n, r) => n + r.sourceRows, 0), ok: reports.every((r) => r.ok) };
  } catch (e) {
    // A file this copy created is removed again, so the command can simply be run again.
    if (created) {
      await dst?.close().catch(() => undefined);
      dst = undefined;
      removeSqlite(target.target);
    }
    throw e;
  } finally {
    await src?.close().catch(() => undefined);
    await dst?.close().catch(() => undefined);
  }
}

function schemaMismatch(message: string): CompanyctlError {
  return new CompanyctlError('COMPANYCTL_SCHEMA_MISMATCH', message, { hint: 'run the same companyctl version against both stores ("companyctl db migrate" on the older one)' });
}

/** Refuse a target holding data. True when the copy creates the target file itself. */
async function assertEmptyTarget(target: StoreLocation): Promise<boolean> {
  if (target.dialect === 'sqlite' && (!existsSync(target.target) || statSync(target.target).size === 0)) return !existsSync(target.target);
  let raw: RawStore;
  try {
    raw = await openRaw(target);
  } catch (e) {
    throw new CompanyctlError('COMPANYCTL_STORE_UNAVAILABLE', `cannot open the target ${target.display}: ${String((e as Error)?.message ?? e).split('\n')[0]}`, {
      field: '--to',
      hint: 'for PostgreSQL, create an empty database first (createdb) and check the URL',
    });
  }
  try {
    const tables = await raw.tables();
    if (tables.length === 0) return false;
    // A schema without data (a copy that failed, or only migrated) may be filled.
    const holding: string[] = [];
    if (tables.includes('companyctl_migrations')) {
      for (const t of tables) if (!OWN_TABLES.has(t) && !SEEDED.has(t) && (await raw.count(t)) > 0) holding.push(t);
    } else {
      holding.push(...tables);
    }
    if (holding.length) {
      throw new CompanyctlError('COMPANYCTL_TARGET_NOT_EMPTY', `the target ${target.display} is not empty (it holds ${holding.slice(0, 5).join(', ')}${holding.length > 5 ? ', ...' : ''})`, {
        field: '--to',
        hint: 'copy into a new SQLite file or an empty PostgreSQL database',
      });
    }
    return false;
  } finally {
    await raw.close();
  }
}

function removeSqlite(path: string): void {
  for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
}

/** Tables ordered so that every table comes after the tables it references. */
export function parentsFirst(tables: string[], fks: [string, string][]): string[] {
  const deps = new Map(tables.map((t) => [t, new Set<string>()]));
  for (const [t, ref] of fks) if (t !== ref && deps.has(t) && deps.has(ref)) deps.get(t)!.add(ref);
  const out: string[] = [];
  const done = new Set<string>();
  const visit = (t: string, path: Set<string>) => {
    if (done.has(t) || path.has(t)) return;
    path.add(t);
    for (const d of [...deps.get(t)!].sort()) visit(d, path);
    done.add(t);
    out.push(t);
  };
  for (const t of [...tables].sort()) visit(t, new Set());
  return out;
}
