// The write stage on PostgreSQL: a chunk's batches are staged through COPY as they arrive, and
// at the end of the chunk a few set-based statements (infra/db/import-stage-pg.ts) match,
// compare, insert and update them. Node only applies the verdicts that need the whole run's
// view: the in-file duplicate check (company ids seen by earlier chunks) and the rejects.
import type { PgStage, StagedMatch } from '../../infra/db/import-stage-pg.js';
import type { StoreTx } from '../../infra/db/store.js';
import { repeatsKey, type CompanyBitmap } from './duplicates.js';
import { RowRejects, shownKey, type RejectRows } from './row-rejects.js';
import { WIDTH, keyColumns, type Chunk, type ImportKey } from './rows.js';
import type { ChunkResult, ChunkWriter } from './write.js';

export class StagedChunkWriter implements ChunkWriter {
  /** Per staged row (seq = index): what a reject about it needs. */
  private readonly lines: number[] = [];
  private readonly originals: string[] = [];
  private readonly keyValues: string[] = [];
  private hasExternalIds = false;
  private readonly keyCols: number[];

  private constructor(
    private readonly tx: StoreTx,
    private readonly stage: PgStage,
    private readonly key: ImportKey,
    private readonly seen: CompanyBitmap,
  ) {
    this.keyCols = key.kind === 'external' ? [] : keyColumns(key.kind);
  }

  static async open(tx: StoreTx, key: ImportKey, seen: CompanyBitmap): Promise<StagedChunkWriter> {
    const { PgStage } = await import('../../infra/db/import-stage-pg.js');
    return new StagedChunkWriter(tx, await PgStage.open(tx), key, seen);
  }

  async add(batch: Chunk): Promise<ChunkResult> {
    const seq0 = this.lines.length;
    const n = batch.lines.length;
    for (let i = 0; i < n; i++) {
      this.lines.push(batch.lines[i]!);
      this.originals.push(batch.originals[i]!);
      const ext = batch.externalIds[i]!;
      if (ext !== null) this.hasExternalIds = true;
      // The key as written, for a duplicate's reject: the key cells, or the external ids.
      this.keyValues.push(this.key.kind === 'external' ? (ext ?? '') : this.keyCols.map((c) => batch.values[i * WIDTH + c]).join('\u0000'));
    }
    await this.stage.add(seq0, batch.values, batch.masks, batch.externalIds);
    return { inserted: 0, updated: 0, unchanged: 0, rejects: [] };
  }

  async end(now: string): Promise<ChunkResult> {
    const { key, seen } = this;
    const n = this.lines.length;
    const rows: RejectRows = {
      line: (i) => this.lines[i]!,
      original: (i) => this.originals[i]!,
      shownKey: (i) => (key.kind === 'external' ? shownKey(key, [], this.keyValues[i]! || null) : this.keyValues[i]!.replace('\u0000', ' ')),
    };
    const rr = new RowRejects(this.tx, rows, n, key, seen);
    await this.stage.close();
    if (n === 0) return { inserted: 0, updated: 0, unchanged: 0, rejects: rr.rejects };
    const match = await this.match(n, rr);
    if (this.hasExternalIds) await this.checkExternalIds(match, rr);
    return this.write(n, match, rr, now);
  }

  /** The company each row's key leads to; repeats of a company an earlier row led to. */
  private async match(n: number, rr: RowRejects): Promise<(StagedMatch | undefined)[]> {
    const { stage, key, seen } = this;
    const matches = key.kind === 'external' ? await stage.matchByExternalId(key.source) : await stage.matchByKey(key.kind);
    const match: (StagedMatch | undefined)[] = new Array(n);
    for (const m of matches) match[m.seq] = m;
    for (let i = 0; i < n; i++) {
      const m = match[i];
      if (!m) continue;
      if (m.others.length) rr.reject(i, 'externalIds', `its external ids belong to different companies (${[m.companyId, ...m.others].join(', ')})`);
      else if (m.deleted) rr.reject(i, 'externalIds', `its external id belongs to deleted company ${m.companyId} (restore it, or delete it with --hard)`);
      else if (seen.has(m.companyId)) rr.duplicate(i, m.companyId);
      else seen.add(m.companyId);
    }
    return match;
  }

  /** External ids another company holds, or an earlier row of this chunk gives too. */
  private async checkExternalIds(match: (StagedMatch | undefined)[], rr: RowRejects): Promise<void> {
    const { key } = this;
    for (const c of await this.stage.externalIdClaims()) {
      if (rr.rejected[c.seq]) continue;
      const source = c.pair.slice(0, c.pair.indexOf(':'));
      if (c.holder !== null && c.holder !== match[c.seq]?.companyId) rr.reject(c.seq, 'externalIds', `${c.pair} is already held by company ${c.holder}`);
      else if (c.firstSeq !== c.seq && key.kind === 'external' && (!key.source || key.source === source)) {
        // A new company's key given twice in the chunk: the later row repeats the earlier one's key.
        rr.reject(c.seq, 'externalIds', repeatsKey(key, c.pair, { line: this.lines[c.firstSeq]! }));
      } else if (c.firstSeq !== c.seq) rr.reject(c.seq, 'externalIds', `${c.pair} is also given on line ${this.lines[c.firstSeq]}`);
    }
  }

  /** Decide, then write: inserts, updates, and the external ids of the rows that made it. */
  private async write(n: number, match: (StagedMatch | undefined)[], rr: RowRejects, now: string): Promise<ChunkResult> {
    const { stage, seen } = this;
    const res: ChunkResult = { inserted: 0, updated: 0, unchanged: 0, rejects: rr.rejects };
    const inserts: number[] = [];
    const updates: number[] = [];
    for (let i = 0; i < n; i++) {
      if (rr.rejected[i]) continue;
      const m = match[i];
      if (!m) inserts.push(i);
      else if (m.same && m.extSame) res.unchanged++;
      else updates.push(i);
    }
    const ids = await stage.insert(inserts, now);
    for (const i of inserts) {
      const id = ids.get(i);
      if (id === undefined) {
        await rr.clash(i, await stage.givenValues(i));
        continue;
      }
      res.inserted++;
      seen.add(id);
    }
    const outcomes = await stage.update(updates, now);
    const replaceExt: number[] = [];
    for (const i of updates) {
      const m = match[i]!;
      const o = outcomes.get(i);
      if (o === 'ok') {
        res.updated++;
        if (!m.extSame) replaceExt.push(i);
      } else if (o === 'stale') rr.stale(i, m.companyId);
      else await rr.clash(i, await stage.givenValues(i), m.companyId);
    }
    if (this.hasExternalIds) await stage.writeExternalIds(replaceExt);
    return res;
  }
}
