// The write stage of one chunk, inside its transaction. On SQLite each row is one prepared
// statement or a few (the writer compares in SQL and reads back only ids); on PostgreSQL the
// chunk is staged through COPY and written set-based (stage.ts).
import type { ImportWriter, Value } from '../../infra/db/import-write.js';
import type { StoreTx } from '../../infra/db/store.js';
import type { CompanyBitmap } from './duplicates.js';
import { RowRejects, rowsOfChunk } from './row-rejects.js';
import { WIDTH, type Chunk, type ImportKey, type Reject } from './rows.js';

const rowValues = (chunk: Chunk, i: number): Value[] => chunk.values.slice(i * WIDTH, (i + 1) * WIDTH);

export interface ChunkResult {
  inserted: number;
  updated: number;
  unchanged: number;
  rejects: Reject[];
}

/** One chunk's writes: batches go in as the reader sends them; end() finishes the chunk. */
export interface ChunkWriter {
  /** Write (or stage) a batch; returns what is known of it now. */
  add(batch: Chunk): Promise<ChunkResult>;
  /** The chunk's last batch is in: write what is staged, return what is left to count. */
  end(now: string): Promise<ChunkResult>;
}

/** The writer of one chunk: staged through COPY on PostgreSQL, batch by batch elsewhere. */
export async function openChunkWriter(tx: StoreTx, key: ImportKey, seen: CompanyBitmap, now: () => string, insertFirst: () => boolean): Promise<ChunkWriter> {
  if (tx.dialect === 'postgresql') return (await import('./stage.js')).StagedChunkWriter.open(tx, key, seen);
  const w = await (await import('../../infra/db/import-write.js')).openImportWriter(tx);
  return {
    add: (batch) => writeRows(tx, w, batch, key, now(), seen, insertFirst()),
    end: async () => ({ inserted: 0, updated: 0, unchanged: 0, rejects: [] }),
  };
}

/** Upsert one batch's rows on the import key (SQLite); returns counts and the rows it had to reject. */
export async function writeRows(
  tx: StoreTx,
  w: ImportWriter,
  chunk: Chunk,
  key: ImportKey,
  now: string,
  seen: CompanyBitmap,
  insertFirst = false,
): Promise<ChunkResult> {
  const { ROW } = await import('../../infra/db/import-write.js');
  const rr = new RowRejects(tx, rowsOfChunk(chunk, key), chunk.lines.length, key, seen);
  const res: ChunkResult = { inserted: 0, updated: 0, unchanged: 0, rejects: rr.rejects };
  const { outcomes, ids, details } = w.upsertRows(key, { values: chunk.values, masks: chunk.masks, externalIds: chunk.externalIds }, now, seen, insertFirst);
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
      case ROW.EXT_DIFFERENT:
        rr.reject(i, 'externalIds', `its external ids belong to different companies (${details.get(i)!.companies!.join(', ')})`);
        break;
      case ROW.EXT_DELETED:
        rr.reject(i, 'externalIds', `its external id belongs to deleted company ${ids[i]} (restore it, or delete it with --hard)`);
        break;
      case ROW.EXT_HELD:
        rr.reject(i, 'externalIds', `${details.get(i)!.pair} is already held by company ${ids[i]}`);
        break;
      case ROW.EXT_ALSO_GIVEN:
        rr.reject(i, 'externalIds', `${details.get(i)!.pair} is also given on line ${chunk.lines[ids[i]!]}`);
        break;
      default: {
        // A clash: the row's own values for the fields it gave decide which key is held.
        const exceptId = outcomes[i] === ROW.UPDATE_CLASH ? ids[i] : undefined;
        const values = rowValues(chunk, i).map((v, f) => (chunk.masks[i]! & (1 << f) ? v : null));
        const c = await rr.explainClash(values, exceptId);
        if (c.holder === undefined && outcomes[i] === ROW.INSERT_CLASH) {
          // OR IGNORE also skips NOT NULL and CHECK failures: insert it again without it, so
          // such a row is written or the store's own error stops the chunk.
          const id = w.insert(rowValues(chunk, i), now);
          if (id !== null) {
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
