// The plan stage of one chunk (the general path: PostgreSQL, and external ids on SQLite): find
// the company each row's key leads to, catch repeated keys and external-id clashes, and decide
// per row: insert, update (only the fields the input gave) or leave unchanged.
import type { ExistingRow, ImportWriter, Value } from '../../infra/db/import-write.js';
import type { CompanyBitmap } from './duplicates.js';
import type { RowRejects } from './row-rejects.js';
import { EXTERNAL_BIT, WIDTH, keyColumns, parseExternalIds, type Chunk, type ImportKey } from './rows.js';

export interface ChunkPlan {
  /** Rows to insert. */
  inserts: number[];
  updates: { i: number; id: number; version: number; values: Value[] }[];
  /** Companies whose external ids are replaced (updated ones; inserted ones are added as they get ids). */
  extSets: { companyId: number; ids: [string, string][] }[];
  /** Per row: its external ids, when the input gave them. */
  ext: ([string, string][] | undefined)[];
  unchanged: number;
}

const keyOf = (parts: readonly unknown[]) => parts.map(String).join('\u0000');

const sameExt = (a: [string, string][], b: [string, string][]) => a.length === b.length && a.every((x, i) => x[0] === b[i]![0] && x[1] === b[i]![1]);

export const rowValues = (chunk: Chunk, i: number): Value[] => chunk.values.slice(i * WIDTH, (i + 1) * WIDTH) as Value[];

export async function planRows(w: ImportWriter, chunk: Chunk, key: ImportKey, seen: CompanyBitmap, rr: RowRejects): Promise<ChunkPlan> {
  const n = chunk.lines.length;
  const ext = chunk.externalIds.map(parseExternalIds);
  // Every external id the chunk mentions, and who holds it now.
  const pairs: [string, string][] = [];
  for (const e of ext) if (e) pairs.push(...e);
  const holders = pairs.length ? await w.externalHolders(pairs) : new Map<string, number>();

  // 1. The company each row's key points at.
  const existing = key.kind === 'external' ? await matchExternal(w, chunk, key, ext, holders, rr) : await matchByKey(w, chunk, key.kind);

  // A row leading to a company an earlier row of this import wrote or matched repeats a key.
  for (let i = 0; i < n; i++) {
    const cur = existing[i];
    if (!cur || rr.rejected[i]) continue;
    if (seen.has(cur.id)) rr.duplicate(i, cur.id);
    else seen.add(cur.id);
  }

  // 2. External ids: clashes with other companies or with other rows of this chunk.
  const claimed = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    if (rr.rejected[i] || !ext[i]) continue;
    for (const [s, id] of ext[i]!) {
      const k = `${s}:${id}`;
      const holder = holders.get(k);
      if (holder !== undefined && holder !== existing[i]?.id) {
        rr.reject(i, 'externalIds', `${k} is already held by company ${holder}`);
        break;
      }
      const other = claimed.get(k);
      if (other !== undefined && other !== i) {
        rr.reject(i, 'externalIds', `${k} is also given on line ${chunk.lines[other]}`);
        break;
      }
      claimed.set(k, i);
    }
  }
  const extIdsOf = await w.externalIdsOf([...new Set(existing.filter((e, i) => e && ext[i]).map((e) => e!.id))]);

  // 3. Decide: insert, update (only the fields the input gave), or leave unchanged.
  const plan: ChunkPlan = { inserts: [], updates: [], extSets: [], ext, unchanged: 0 };
  for (let i = 0; i < n; i++) {
    if (rr.rejected[i]) continue;
    const mask = chunk.masks[i]!;
    const values = rowValues(chunk, i);
    const cur = existing[i];
    if (!cur) {
      plan.inserts.push(i);
      continue;
    }
    let changed = false;
    const merged = cur.values.slice();
    for (let f = 0; f < WIDTH; f++) {
      if (mask & (1 << f) && merged[f] !== values[f]) {
        merged[f] = values[f]!;
        changed = true;
      }
    }
    const extChanged = !!(mask & EXTERNAL_BIT) && !sameExt(extIdsOf.get(cur.id) ?? [], ext[i]!);
    if (!changed && !extChanged) {
      plan.unchanged++;
      continue;
    }
    plan.updates.push({ i, id: cur.id, version: cur.version, values: merged });
    if (extChanged) plan.extSets.push({ companyId: cur.id, ids: ext[i]! });
  }
  return plan;
}

/** Live companies by a single-company key (domain, LEI, registration). */
async function matchByKey(w: ImportWriter, chunk: Chunk, kind: Exclude<ImportKey['kind'], 'external'>): Promise<(ExistingRow | undefined)[]> {
  const n = chunk.lines.length;
  const cols = keyColumns(kind);
  const keys: string[][] = [];
  for (let i = 0; i < n; i++) keys.push(cols.map((c) => chunk.values[i * WIDTH + c] as string));
  const found = await w.findByKey(kind, keys);
  return keys.map((k) => found.get(keyOf(k)));
}

/** Companies by the row's external ids (of `key.source` when given); ids of two companies, or of a deleted one, are rejected. */
async function matchExternal(
  w: ImportWriter,
  chunk: Chunk,
  key: ImportKey,
  ext: ([string, string][] | undefined)[],
  holders: Map<string, number>,
  rr: RowRejects,
): Promise<(ExistingRow | undefined)[]> {
  const n = chunk.lines.length;
  const existing: (ExistingRow | undefined)[] = new Array(n);
  const target: (number | undefined)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const mine = (ext[i] ?? []).filter((p) => !key.source || p[0] === key.source);
    const ids = [...new Set(mine.map((p) => holders.get(`${p[0]}:${p[1]}`)).filter((x): x is number => x !== undefined))];
    if (ids.length > 1) rr.reject(i, 'externalIds', `its external ids belong to different companies (${ids.join(', ')})`);
    else target[i] = ids[0];
  }
  const byId = await w.findById([...new Set(target.filter((x): x is number => x !== undefined))]);
  for (let i = 0; i < n; i++) {
    const id = target[i];
    if (rr.rejected[i] || id === undefined) continue;
    const row = byId.get(id);
    if (!row || row.deleted) rr.reject(i, 'externalIds', `its external id belongs to deleted company ${id} (restore it, or delete it with --hard)`);
    else existing[i] = row;
  }
  return existing;
}
