// The import writer on SQLite (better-sqlite3): prepared statements reused across chunks on
// the connection the chunk's transaction holds; the per-row path compares in SQL and reads
// back only ids.
import type { Database, Statement } from 'better-sqlite3';
import { COLS, ROW, ROW_COLUMNS, isUnique, type ImportWriter, type KeyKind, type RowBatch, type RowDetail, type SeenCompanies, type Value, type WriterKey } from './import-write.js';

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


export function sqliteWriter(db: Database): ImportWriter {
  if (!tuned.has(db)) {
    // A 64 MiB page cache for the unique indexes' pages (random keys touch all of them);
    // it is given back at the end of the import (releaseImportCache). 48 MiB cost 15% more time
    // on a fresh 1M-row load, 32 MiB 20% (bench:import).
    db.pragma('cache_size = -65536');
    tuned.add(db);
  }
  const ins = stmt(db, `insert into company (${COLS}, version, created_at, updated_at) values (${ROW_COLUMNS.map(() => '?').join(', ')}, 1, ?, ?) on conflict do nothing`);
  return {
    insert(values, now) {
      const r = ins.run(...values, now, now);
      return r.changes === 1 ? Number(r.lastInsertRowid) : null;
    },
    upsertRows(key, rows, now, seen, insertFirst) {
      return sqliteUpsertRows(db, key, rows, now, seen, insertFirst);
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
function maskPlan(db: Database, kind: KeyKind | 'external', mask: number): MaskPlan {
  let m = plans.get(db);
  if (!m) plans.set(db, (m = new Map()));
  const k = `${kind}:${mask}`;
  let p = m.get(k);
  if (!p) {
    // NDJSON records may each give other fields: keep the statements of the last few hundred shapes.
    if (m.size >= 256) m.clear();
    const columns = maskColumns(mask & ((1 << ROW_COLUMNS.length) - 1));
    const same = columns.length ? columns.map((c) => `${ROW_COLUMNS[c]} is ?`).join(' and ') : '1';
    const set = columns.map((c) => `${ROW_COLUMNS[c]} = ?`).join(', ');
    p = {
      columns,
      // Arguments in the order of their placeholders: the compared values, then the key.
      // External key: the company an external id leads to, by id, live or not.
      look: db
        .prepare(
          kind === 'external'
            ? `select id, version, (${same}) as same, deleted_at is not null from company where id = ?`
            : `select id, version, (${same}) as same, 0 from company where ${KEY_WHERE[kind]} and deleted_at is null`,
        )
        .raw(true),
      lookArgs: new Array((kind === 'external' ? 1 : KEY_COLUMNS[kind].length) + columns.length),
      update: db.prepare(`update company set ${set ? `${set}, ` : ''}version = version + 1, updated_at = ? where id = ? and version = ?`),
      updateArgs: new Array(columns.length + 3),
    };
    m.set(k, p);
  }
  return p;
}

/** The external ids of a row: [[source, id], ...], sorted by source. */
const parsePairs = (json: string | null): [string, string][] | undefined => (json === null ? undefined : (JSON.parse(json) as [string, string][]));
const pairKey = (p: [string, string]) => `${p[0]}\u0000${p[1]}`;

function sqliteUpsertRows(db: Database, key: WriterKey, rows: RowBatch, now: string, seen: SeenCompanies, insertFirst: boolean) {
  const batch = new BatchUpsert(db, key, rows, now, seen);
  for (let i = 0; i < rows.masks.length; i++) batch.row(i, insertFirst);
  return { outcomes: batch.outcomes, ids: batch.ids, details: batch.details };
}

/** One batch of SQLite's per-row path: statements, per-row results, the batch's claimed external ids. */
class BatchUpsert {
  readonly outcomes: Uint8Array;
  readonly ids: Float64Array;
  readonly details = new Map<number, RowDetail>();
  private readonly width = ROW_COLUMNS.length;
  // OR IGNORE, without RETURNING: a statement that cannot abort needs no statement journal,
  // and RETURNING buffers its rows in a temporary table - together they doubled an insert's cost.
  private readonly ins: Statement;
  private readonly insArgs: Value[];
  private readonly holderOf: Statement;
  private readonly storedExt: Statement;
  private readonly delExt: Statement;
  private readonly insExt: Statement;
  private readonly keyCols: number[];
  private plan: MaskPlan | undefined;
  private planMask = -1;
  /** External ids this batch's earlier rows gave (pairKey -> row). */
  private readonly claimed = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly key: WriterKey,
    private readonly rows: RowBatch,
    private readonly now: string,
    private readonly seen: SeenCompanies,
  ) {
    const n = rows.masks.length;
    this.outcomes = new Uint8Array(n);
    this.ids = new Float64Array(n);
    this.ins = stmt(db, `insert or ignore into company (${COLS}, version, created_at, updated_at) values (${ROW_COLUMNS.map(() => '?').join(', ')}, 1, ?, ?)`);
    this.insArgs = new Array(this.width + 2);
    this.insArgs[this.width] = now;
    this.insArgs[this.width + 1] = now;
    this.holderOf = stmt(db, 'select company_id from company_external_id where source = ? and external_id = ?').pluck(true);
    this.storedExt = stmt(db, 'select source, external_id from company_external_id where company_id = ? order by source').raw(true);
    this.delExt = stmt(db, 'delete from company_external_id where company_id = ?');
    this.insExt = stmt(db, 'insert into company_external_id (source, external_id, company_id) values (?, ?, ?)');
    this.keyCols = key.kind === 'external' ? [] : KEY_COLUMNS[key.kind];
  }

  row(i: number, insertFirst: boolean): void {
    const { key, rows } = this;
    const external = key.kind === 'external';
    const base = i * this.width;
    const pairs = parsePairs(rows.externalIds[i] ?? null);
    // Who holds each of the row's external ids now (undefined: nobody).
    const holders = pairs?.map(([s, id]) => this.holderOf.get(s, id) as number | undefined);
    const held = !!holders?.some((h) => h !== undefined);
    // A run of new rows: try the insert first (only when none of its external ids is taken).
    const tryFirst = insertFirst && !external && !held && !pairs?.some((p) => this.claimed.has(pairKey(p)));
    if (tryFirst) {
      const id = this.insert(base);
      if (id) return this.inserted(i, id, pairs);
    }
    const mask = rows.masks[i]!;
    if (mask !== this.planMask) {
      this.plan = maskPlan(this.db, key.kind, mask);
      this.planMask = mask;
    }
    const hit = this.lookup(i, base, pairs, holders);
    if (hit === 'rejected') return;
    const target = hit ? Number(hit[0]) : undefined;
    if (hit && hit[3]) return this.set(i, ROW.EXT_DELETED, target!);
    if (target !== undefined) {
      this.ids[i] = target;
      if (this.seen.has(target)) return this.set(i, ROW.DUPLICATE, target);
      this.seen.add(target);
    }
    if (pairs && this.externalIdClash(i, pairs, holders!, target)) return;
    if (target === undefined) {
      const id = tryFirst ? 0 : this.insert(base);
      if (id) this.inserted(i, id, pairs);
      else this.outcomes[i] = ROW.INSERT_CLASH;
      return;
    }
    for (const p of pairs ?? []) this.claimed.set(pairKey(p), i);
    const extSame = !pairs || sameExt(this.storedExt.all(target) as [string, string][], pairs);
    if (hit![2] === 1 && extSame) return this.set(i, ROW.UNCHANGED, target);
    this.update(i, base, target, hit![1]);
    if (this.outcomes[i] === ROW.UPDATED && !extSame) {
      this.delExt.run(target);
      this.writeExt(target, pairs!);
    }
  }

  private set(i: number, outcome: number, id: number): void {
    this.outcomes[i] = outcome;
    this.ids[i] = id;
  }

  /** The company the row's key leads to: [id, version, same, deleted], undefined, or 'rejected'. */
  private lookup(i: number, base: number, pairs: [string, string][] | undefined, holders: (number | undefined)[] | undefined) {
    const p = this.plan!;
    const { values } = this.rows;
    let a = 0;
    for (const c of p.columns) p.lookArgs[a++] = values[base + c]!;
    if (this.key.kind !== 'external') {
      for (const c of this.keyCols) p.lookArgs[a++] = values[base + c]!;
      return p.look.get(p.lookArgs) as [number, number, number, number] | undefined;
    }
    const source = this.key.source;
    const targets = [...new Set((holders ?? []).filter((h, k) => h !== undefined && (!source || pairs![k]![0] === source)))] as number[];
    if (targets.length > 1) {
      this.outcomes[i] = ROW.EXT_DIFFERENT;
      this.details.set(i, { companies: targets.map(Number) });
      return 'rejected' as const;
    }
    if (targets.length === 0) return undefined;
    p.lookArgs[a] = targets[0]!;
    return p.look.get(p.lookArgs) as [number, number, number, number] | undefined;
  }

  /** An external id of the row given by an earlier row of the batch, or held by another company. */
  private externalIdClash(i: number, pairs: [string, string][], holders: (number | undefined)[], target: number | undefined): boolean {
    for (let k = 0; k < pairs.length; k++) {
      const earlier = this.claimed.get(pairKey(pairs[k]!));
      const holder = holders[k];
      if (earlier !== undefined && earlier !== i) this.set(i, ROW.EXT_ALSO_GIVEN, earlier);
      else if (holder !== undefined && Number(holder) !== target) this.set(i, ROW.EXT_HELD, Number(holder));
      else continue;
      this.details.set(i, { pair: `${pairs[k]![0]}:${pairs[k]![1]}` });
      return true;
    }
    return false;
  }

  private insert(base: number): number {
    const { insArgs, width } = this;
    for (let c = 0; c < width; c++) insArgs[c] = this.rows.values[base + c]!;
    const r = this.ins.run(insArgs);
    return r.changes === 1 ? Number(r.lastInsertRowid) : 0;
  }

  private inserted(i: number, id: number, pairs: [string, string][] | undefined): void {
    this.seen.add(id);
    if (pairs) {
      this.writeExt(id, pairs);
      for (const p of pairs) this.claimed.set(pairKey(p), i);
    }
    this.set(i, ROW.INSERTED, id);
  }

  private update(i: number, base: number, target: number, version: number): void {
    const p = this.plan!;
    let a = 0;
    for (const c of p.columns) p.updateArgs[a++] = this.rows.values[base + c]!;
    p.updateArgs[a++] = this.now;
    p.updateArgs[a++] = target;
    p.updateArgs[a] = version;
    try {
      this.outcomes[i] = p.update.run(p.updateArgs).changes === 1 ? ROW.UPDATED : ROW.STALE;
    } catch (e) {
      if (!isUnique(e)) throw e;
      this.outcomes[i] = ROW.UPDATE_CLASH;
    }
  }

  private writeExt(companyId: number, pairs: [string, string][]): void {
    for (const [s, id] of pairs) this.insExt.run(s, id, companyId);
  }
}

const sameExt = (a: [string, string][], b: [string, string][]) => a.length === b.length && a.every((x, i) => x[0] === b[i]![0] && x[1] === b[i]![1]);

/**
 * The end of an import: the connection's page cache back to SQLite's default, so what runs
 * next on it (the event handlers' recount of 1M rows) reuses that memory instead of adding its
 * own on top (peak RSS).
 */
export function releaseImportCache(db: Database): void {
  if (!tuned.has(db)) return;
  db.pragma('cache_size = -2000');
  tuned.delete(db);
}
