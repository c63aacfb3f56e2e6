// The one duplicate-key check of an import: the first row with a key wins, and a later row
// with the same key is rejected on the key field. A dry run (nothing written) compares key
// strings in memory (KeySet); a real run compares the companies rows lead to (CompanyBitmap,
// 1 bit a company id, so memory stays flat however long the file). Both word the reject here.
import type { SqlReader } from '../../infra/db/store.js';
import { describeImportKey, keyColumns, parseExternalIds, WIDTH, type Chunk, type ImportKey } from './rows.js';

/**
 * A set of 64-bit key hashes with the line that first held each key: about 16 bytes a row
 * instead of a string Set's ~70, so a 5M-row file's duplicate check stays small.
 */
export class KeySet {
  private h1: Int32Array;
  private h2: Int32Array;
  private lines: Int32Array;
  private size = 0;
  constructor(capacity = 1 << 16) {
    this.h1 = new Int32Array(capacity);
    this.h2 = new Int32Array(capacity);
    this.lines = new Int32Array(capacity);
  }
  /** Adds the key; returns the line that already held it, or 0 when it is new. */
  add(key: string, line: number): number {
    let a = 0x811c9dc5 | 0;
    let b = 0x9747b28c | 0;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 15;
    }
    if (a === 0 && b === 0) a = 1; // (0,0) marks an empty slot
    if ((this.size + 1) * 4 > this.h1.length * 3) this.grow();
    const mask = this.h1.length - 1;
    let i = (a ^ (b >>> 7)) & mask;
    for (;;) {
      const x = this.h1[i]!;
      const y = this.h2[i]!;
      if (x === 0 && y === 0) {
        this.h1[i] = a;
        this.h2[i] = b;
        this.lines[i] = line;
        this.size++;
        return 0;
      }
      if (x === a && y === b) return this.lines[i]!;
      i = (i + 1) & mask;
    }
  }
  private grow(): void {
    const [h1, h2, lines] = [this.h1, this.h2, this.lines];
    const cap = h1.length * 2;
    this.h1 = new Int32Array(cap);
    this.h2 = new Int32Array(cap);
    this.lines = new Int32Array(cap);
    const mask = cap - 1;
    for (let j = 0; j < h1.length; j++) {
      const a = h1[j]!;
      const b = h2[j]!;
      if (a === 0 && b === 0) continue;
      let i = (a ^ (b >>> 7)) & mask;
      while (this.h1[i] !== 0 || this.h2[i] !== 0) i = (i + 1) & mask;
      this.h1[i] = a;
      this.h2[i] = b;
      this.lines[i] = lines[j]!;
    }
  }
}

/**
 * Companies this run wrote or matched: one bit per company id, in 8 KiB pages of 65,536 ids
 * (so a few far-apart ids cost a few pages, not a bitmap up to the largest).
 */
export class CompanyBitmap {
  private pages = new Map<number, Uint32Array>();
  has(id: number): boolean {
    const page = this.pages.get(Math.floor(id / 65536));
    const bit = id % 65536;
    return page !== undefined && (page[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }
  add(id: number): void {
    const key = Math.floor(id / 65536);
    let page = this.pages.get(key);
    if (!page) this.pages.set(key, (page = new Uint32Array(2048)));
    const bit = id % 65536;
    page[bit >>> 5]! |= 1 << (bit & 31);
  }
}

/** The reject reason of a row repeating an earlier row's key (`shown` as the user wrote it). */
export function repeatsKey(key: ImportKey, shown: string, earlier: { line: number } | { companyId: number }): string {
  const where = 'line' in earlier ? `of line ${earlier.line} in this file` : `of an earlier row in this file (company ${earlier.companyId})`;
  return `repeats the ${describeImportKey(key)} key ${shown} ${where}`;
}

/**
 * Resume: mark the companies the rows of the committed part of the file led to, so a later
 * row repeating one of their keys is still caught. Reads committed data on the read connection,
 * one query per few hundred rows, and marks what the plan stage would have matched.
 */
export async function relearnKeys(read: SqlReader, chunk: Chunk, key: ImportKey, seen: CompanyBitmap): Promise<void> {
  const n = chunk.lines.length;
  const v = chunk.values;
  if (n === 0) return;
  const keys = await import('../../infra/db/import-keys.js');
  if (key.kind === 'external') {
    const rows = chunk.externalIds.map((e) => (parseExternalIds(e) ?? []).filter((p) => !key.source || p[0] === key.source));
    const holders = await keys.externalIdHolders(read, rows.flat());
    for (const mine of rows) {
      const ids = new Set(mine.map((p) => holders.get(`${p[0]}:${p[1]}`)).filter((x): x is number => x !== undefined));
      if (ids.size === 1) seen.add([...ids][0]!);
    }
    return;
  }
  const values: (string | number | null)[][] = [];
  for (let i = 0; i < n; i++) values.push(keyColumns(key.kind).map((c) => v[i * WIDTH + c]!));
  for (const id of await keys.liveCompaniesByKey(read, key.kind, values)) seen.add(id);
}
