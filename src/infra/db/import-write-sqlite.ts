// The import writer on SQLite (better-sqlite3): prepared statements reused across chunks on
// the connection the chunk's transaction holds; the per-row path compares in SQL and reads
// back only ids.
import type { Database, Statement } from 'better-sqlite3';
import { COLS, ROW, ROW_COLUMNS, isUnique, keyOf, type ExistingRow, type ImportWriter, type KeyKind, type RowBatch, type SeenCompanies, type Value } from './import-write.js';

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
