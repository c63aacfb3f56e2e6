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

function sqliteUpsertRows(db: Database, key: WriterKey, rows: RowBatch, now: string, seen: SeenCompanies, insertFirst: boolean) {
  const width = ROW_COLUMNS.length;
  const n = rows.masks.length;
  const outcomes = new Uint8Array(n);
  const ids = new Float64Array(n);
  const details = new Map<number, RowDetail>();
  // OR IGNORE, without RETURNING: a statement that cannot abort needs no statement journal,
  // and RETURNING buffers its rows in a temporary table - together they doubled an insert's cost.
  const ins = stmt(db, `insert or ignore into company (${COLS}, version, created_at, updated_at) values (${ROW_COLUMNS.map(() => '?').join(', ')}, 1, ?, ?)`);
  const holderOf = stmt(db, 'select company_id from company_external_id where source = ? and external_id = ?').pluck(true);
  const storedExt = stmt(db, 'select source, external_id from company_external_id where company_id = ? order by source').raw(true);
  const delExt = stmt(db, 'delete from company_external_id where company_id = ?');
  const insExt = stmt(db, 'insert into company_external_id (source, external_id, company_id) values (?, ?, ?)');
  const insArgs: Value[] = new Array(width + 2);
  insArgs[width] = now;
  insArgs[width + 1] = now;
  const external = key.kind === 'external';
  const keyCols = key.kind === 'external' ? [] : KEY_COLUMNS[key.kind];
  const { values } = rows;
  let plan: MaskPlan | undefined;
  let planMask = -1;
  // External ids this batch's earlier rows gave ("source\u0000id" -> row).
  const claimed = new Map<string, number>();
  const insert = (base: number): number => {
    for (let c = 0; c < width; c++) insArgs[c] = values[base + c]!;
    const r = ins.run(insArgs);
    return r.changes === 1 ? Number(r.lastInsertRowid) : 0;
  };
  const writeExt = (companyId: number, pairs: [string, string][]) => {
    for (const [s, id] of pairs) insExt.run(s, id, companyId);
  };
  for (let i = 0; i < n; i++) {
    const base = i * width;
    const mask = rows.masks[i]!;
    const pairs = parsePairs(rows.externalIds[i] ?? null);
    // Who holds each of the row's external ids now (undefined: nobody).
    let holders: (number | undefined)[] | undefined;
    let held = false;
    if (pairs) {
      holders = pairs.map(([s, id]) => holderOf.get(s, id) as number | undefined);
      held = holders.some((h) => h !== undefined);
    }
    const inserted = (id: number) => {
      seen.add(id);
      if (pairs) writeExt(id, pairs);
      for (const [s, id2] of pairs ?? []) claimed.set(`${s}\u0000${id2}`, i);
      outcomes[i] = ROW.INSERTED;
      ids[i] = id;
    };
    // A run of new rows: try the insert first (only when none of its external ids is taken).
    if (insertFirst && !external && !held && !pairs?.some(([s, id]) => claimed.has(`${s}\u0000${id}`))) {
      const id = insert(base);
      if (id) {
        inserted(id);
        continue;
      }
    }
    if (mask !== planMask) {
      plan = maskPlan(db, key.kind, mask);
      planMask = mask;
    }
    const p = plan!;
    let a = 0;
    for (const c of p.columns) p.lookArgs[a++] = values[base + c]!;
    let hit: [number, number, number, number] | undefined;
    if (external) {
      const targets = [...new Set((holders ?? []).filter((h, k) => h !== undefined && (!key.source || pairs![k]![0] === key.source)))] as number[];
      if (targets.length > 1) {
        outcomes[i] = ROW.EXT_DIFFERENT;
        details.set(i, { companies: targets.map(Number) });
        continue;
      }
      if (targets.length === 1) {
        p.lookArgs[a] = targets[0]!;
        hit = p.look.get(p.lookArgs) as typeof hit;
      }
    } else {
      for (const c of keyCols) p.lookArgs[a++] = values[base + c]!;
      hit = p.look.get(p.lookArgs) as typeof hit;
    }
    const target = hit ? Number(hit[0]) : undefined;
    if (hit && hit[3]) {
      outcomes[i] = ROW.EXT_DELETED;
      ids[i] = target!;
      continue;
    }
    if (target !== undefined) {
      ids[i] = target;
      if (seen.has(target)) {
        outcomes[i] = ROW.DUPLICATE;
        continue;
      }
      seen.add(target);
    }
    // External ids given by an earlier row of the batch, or held by another company.
    if (pairs) {
      let clash = false;
      for (let k = 0; k < pairs.length && !clash; k++) {
        const [s, id] = pairs[k]!;
        const earlier = claimed.get(`${s}\u0000${id}`);
        if (earlier !== undefined && earlier !== i) {
          outcomes[i] = ROW.EXT_ALSO_GIVEN;
          ids[i] = earlier;
          clash = true;
        } else if (holders![k] !== undefined && Number(holders![k]) !== target) {
          outcomes[i] = ROW.EXT_HELD;
          ids[i] = Number(holders![k]);
          clash = true;
        }
        if (clash) details.set(i, { pair: `${s}:${id}` });
      }
      if (clash) continue;
    }
    if (target === undefined) {
      const id = insertFirst && !external && !held ? 0 : insert(base);
      if (id) inserted(id);
      else outcomes[i] = ROW.INSERT_CLASH;
      continue;
    }
    for (const [s, id] of pairs ?? []) claimed.set(`${s}\u0000${id}`, i);
    const extSame = !pairs || sameExt(storedExt.all(target) as [string, string][], pairs);
    if (hit![2] === 1 && extSame) {
      outcomes[i] = ROW.UNCHANGED;
      continue;
    }
    a = 0;
    for (const c of p.columns) p.updateArgs[a++] = values[base + c]!;
    p.updateArgs[a++] = now;
    p.updateArgs[a++] = target;
    p.updateArgs[a] = hit![1];
    try {
      outcomes[i] = p.update.run(p.updateArgs).changes === 1 ? ROW.UPDATED : ROW.STALE;
    } catch (e) {
      if (!isUnique(e)) throw e;
      outcomes[i] = ROW.UPDATE_CLASH;
    }
    if (outcomes[i] === ROW.UPDATED && !extSame) {
      delExt.run(target);
      writeExt(target, pairs!);
    }
  }
  return { outcomes, ids, details };
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
