// The write stage of one chunk, inside its transaction: SQLite rows without external ids go
// one prepared statement at a time (the writer compares in SQL and reads back only ids);
// everything else is planned for the whole chunk (plan.ts) and written in batches.
import type { ImportWriter } from '../../infra/db/import-write.js';
import type { StoreTx } from '../../infra/db/store.js';
import type { CompanyBitmap } from './duplicates.js';
import { planRows, rowValues, type ChunkPlan } from './plan.js';
import { RowRejects } from './row-rejects.js';
import { EXTERNAL_BIT, type Chunk, type ImportKey, type Reject } from './rows.js';

export interface ChunkResult {
  inserted: number;
  updated: number;
  unchanged: number;
  rejects: Reject[];
}

/** Upsert one chunk's rows on the import key; returns counts and the rows it had to reject. */
export async function writeRows(
  tx: StoreTx,
  w: ImportWriter,
  chunk: Chunk,
  key: ImportKey,
  now: string,
  seen: CompanyBitmap,
  insertFirst = false,
): Promise<ChunkResult> {
  const rr = new RowRejects(tx, chunk, key, seen);
  if (w.upsertRows && key.kind !== 'external' && !chunk.masks.some((m) => m & EXTERNAL_BIT)) {
    return writeRowByRow(w, chunk, key.kind, now, seen, insertFirst, rr);
  }
  const plan = await planRows(w, chunk, key, seen, rr);
  return applyPlan(w, chunk, plan, now, seen, rr);
}

/** SQLite's per-row path: the writer's outcome per row, turned into counts and rejects. */
async function writeRowByRow(
  w: ImportWriter,
  chunk: Chunk,
  kind: Exclude<ImportKey['kind'], 'external'>,
  now: string,
  seen: CompanyBitmap,
  insertFirst: boolean,
  rr: RowRejects,
): Promise<ChunkResult> {
  const { ROW } = await import('../../infra/db/import-write.js');
  const res: ChunkResult = { inserted: 0, updated: 0, unchanged: 0, rejects: rr.rejects };
  const { outcomes, ids } = w.upsertRows!(kind, { values: chunk.values, masks: chunk.masks }, now, seen, insertFirst);
  for (let i = 0; i < chunk.lines.length; i++) {
    switch (outcomes[i]) {
      case ROW.INSERTED:
        res.inserted++;
        break;
      case ROW.UPDATED:
        res.updated++;
        break;
      case ROW.UNCHANGED:
        res.unchanged++;
        break;
      case ROW.DUPLICATE:
        rr.duplicate(i, ids[i]!);
        break;
      case ROW.STALE:
        rr.stale(i, ids[i]!);
        break;
      default: {
        // A clash: the row's own values for the fields it gave decide which key is held.
        const exceptId = outcomes[i] === ROW.UPDATE_CLASH ? ids[i] : undefined;
        const values = rowValues(chunk, i).map((v, f) => (chunk.masks[i]! & (1 << f) ? v : null));
        const c = await rr.explainClash(values, exceptId);
        if (c.holder === undefined && outcomes[i] === ROW.INSERT_CLASH) {
          // OR IGNORE also skips NOT NULL and CHECK failures: insert it again without it, so
          // such a row is written or the store's own error stops the chunk.
          const [id] = await w.insert([rowValues(chunk, i)], now);
          if (id !== null && id !== undefined) {
            res.inserted++;
            seen.add(id);
            break;
          }
        }
        await rr.clash(i, values, exceptId);
      }
    }
  }
  return res;
}

/** Write a chunk's plan: inserts, then updates, then the external ids of the rows that made it. */
async function applyPlan(w: ImportWriter, chunk: Chunk, plan: ChunkPlan, now: string, seen: CompanyBitmap, rr: RowRejects): Promise<ChunkResult> {
  const res: ChunkResult = { inserted: 0, updated: 0, unchanged: plan.unchanged, rejects: rr.rejects };
  const { inserts, updates, extSets, ext } = plan;
  const ids = await w.insert(
    inserts.map((i) => rowValues(chunk, i)),
    now,
  );
  for (let k = 0; k < inserts.length; k++) {
    const i = inserts[k]!;
    const id = ids[k];
    if (id === null || id === undefined) {
      await rr.clash(i, rowValues(chunk, i));
      continue;
    }
    res.inserted++;
    seen.add(id);
    if (ext[i]?.length) extSets.push({ companyId: id, ids: ext[i]! });
  }
  const outcomes = await w.update(updates, now);
  const failedUpdates = new Set<number>();
  for (let k = 0; k < updates.length; k++) {
    const u = updates[k]!;
    if (outcomes[k] === 'ok') {
      res.updated++;
      continue;
    }
    failedUpdates.add(u.id);
    if (outcomes[k] === 'stale') rr.stale(u.i, u.id);
    else await rr.clash(u.i, u.values, u.id);
  }
  await w.setExternalIds(extSets.filter((s) => !failedUpdates.has(s.companyId)));
  return res;
}
