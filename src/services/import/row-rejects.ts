// The rejects the write stage finds in one chunk (repeated keys, clashes with other
// companies' unique keys, concurrent changes), each with the row's line and original record.
import type { StoreTx } from '../../infra/db/store.js';
import type { Value } from '../../infra/db/import-write.js';
import { repeatsKey, type CompanyBitmap } from './duplicates.js';
import { CELL_SEP, IDX, KEY_FIELD, WIDTH, keyColumns, parseExternalIds, type Chunk, type ImportKey, type Reject } from './rows.js';

/** What a reject needs of a row of the chunk. */
export interface RejectRows {
  line(i: number): number;
  /** The record as read: cells joined by CELL_SEP, or the JSON text. */
  original(i: number): string;
  /** The row's import key as the user wrote it: "acme.de", "DE HRB 123", "crm:42". */
  shownKey(i: number): string;
}

/** The import key of a row as the user wrote it, from its key values or external ids. */
export function shownKey(key: ImportKey, keyValues: Value[], externalIds: string | null): string {
  if (key.kind === 'external') {
    const ext = (parseExternalIds(externalIds) ?? []).find((p) => !key.source || p[0] === key.source);
    return `${ext?.[0]}:${ext?.[1]}`;
  }
  return keyValues.map(String).join(' ');
}

export function rowsOfChunk(chunk: Chunk, key: ImportKey): RejectRows {
  const cols = key.kind === 'external' ? [] : keyColumns(key.kind);
  return {
    line: (i) => chunk.lines[i]!,
    original: (i) => chunk.originals[i]!,
    shownKey: (i) => shownKey(key, cols.map((c) => chunk.values[i * WIDTH + c]!), chunk.externalIds[i]!),
  };
}

export class RowRejects {
  readonly rejects: Reject[] = [];
  /** Per row: 1 once rejected. */
  readonly rejected: Uint8Array;
  private readonly keyField: string;

  constructor(
    private readonly tx: StoreTx,
    private readonly rows: RejectRows,
    n: number,
    private readonly key: ImportKey,
    private readonly seen: CompanyBitmap,
  ) {
    this.rejected = new Uint8Array(n);
    this.keyField = KEY_FIELD[key.kind];
  }

  reject(i: number, field: string, reason: string): void {
    this.rejected[i] = 1;
    const o = this.rows.original(i);
    const isJson = o.startsWith('{');
    this.rejects.push({ line: this.rows.line(i), field, reason, cells: isJson ? undefined : o.split(CELL_SEP), text: isJson ? o : undefined });
  }

  stale(i: number, companyId: number): void {
    this.reject(i, 'record', `company ${companyId} was changed by another writer during the import; run it again`);
  }

  /** Row i leads to company `companyId`, which an earlier row of this import wrote or matched. */
  duplicate(i: number, companyId: number): void {
    this.reject(i, this.keyField, repeatsKey(this.key, this.rows.shownKey(i), { companyId }));
  }

  /** Which company holds one of these values' unique keys (other than `exceptId`), and the reject that says so. */
  async explainClash(values: Value[], exceptId?: number): Promise<{ field: string; reason: string; holder?: number }> {
    const { findKeyHolders } = await import('../../infra/db/company-read.js');
    const { keysOf } = await import('../../domain/company.js');
    const c = {
      domain: values[IDX.domain] as string | null,
      lei: values[IDX.lei] as string | null,
      registrationCountry: values[IDX.registrationCountry] as string | null,
      registrationNumber: values[IDX.registrationNumber] as string | null,
    };
    const h = (await findKeyHolders(this.tx.read, keysOf(c), [], exceptId))[0];
    if (!h) return { field: 'record', reason: 'a unique key (domain, LEI or registration) is already held by another company' };
    const field = h.key.startsWith('domain') ? 'domain' : h.key.startsWith('lei') ? 'lei' : 'registrationNumber';
    const earlier = this.seen.has(h.companyId) ? ', written by an earlier row of this file' : '';
    return { field, reason: `${h.key} is already held by company ${h.companyId}${earlier}`, holder: h.companyId };
  }

  /** A failed insert or update: a repeat of an earlier row's import key, or a clash with another company's key. */
  async clash(i: number, values: Value[], exceptId?: number): Promise<void> {
    const c = await this.explainClash(values, exceptId);
    if (c.holder !== undefined && c.field === this.keyField && exceptId === undefined && this.seen.has(c.holder)) this.duplicate(i, c.holder);
    else this.reject(i, c.field, c.reason);
  }
}
