// The rejects the write stage finds in one chunk (repeated keys, clashes with other
// companies' unique keys, concurrent changes), each with the row's line and original record.
import type { StoreTx } from '../../infra/db/store.js';
import type { Value } from '../../infra/db/import-write.js';
import { repeatsKey, type CompanyBitmap } from './duplicates.js';
import { CELL_SEP, IDX, KEY_FIELD, WIDTH, parseExternalIds, type Chunk, type ImportKey, type Reject } from './rows.js';

export class RowRejects {
  readonly rejects: Reject[] = [];
  /** Per row: 1 once rejected. */
  readonly rejected: Uint8Array;
  private readonly keyField: string;

  constructor(
    private readonly tx: StoreTx,
    private readonly chunk: Chunk,
    private readonly key: ImportKey,
    private readonly seen: CompanyBitmap,
  ) {
    this.rejected = new Uint8Array(chunk.lines.length);
    this.keyField = KEY_FIELD[key.kind];
  }

  reject(i: number, field: string, reason: string): void {
    this.rejected[i] = 1;
    const o = this.chunk.originals[i]!;
    const isJson = o.startsWith('{');
    this.rejects.push({ line: this.chunk.lines[i]!, field, reason, cells: isJson ? undefined : o.split(CELL_SEP), text: isJson ? o : undefined });
  }

  stale(i: number, companyId: number): void {
    this.reject(i, 'record', `company ${companyId} was changed by another writer during the import; run it again`);
  }

  /** Row i leads to company `companyId`, which an earlier row of this import wrote or matched. */
  duplicate(i: number, companyId: number): void {
    const { chunk, key } = this;
    const v = chunk.values;
    const base = i * WIDTH;
    const ext = key.kind === 'external' ? (parseExternalIds(chunk.externalIds[i]!) ?? []).find((p) => !key.source || p[0] === key.source) : undefined;
    const shown =
      key.kind === 'external'
        ? `${ext?.[0]}:${ext?.[1]}`
        : key.kind === 'registration'
          ? `${v[base + IDX.registrationCountry]} ${v[base + IDX.registrationNumber]}`
          : String(v[base + IDX[key.kind]]);
    this.reject(i, this.keyField, repeatsKey(key, shown, { companyId }));
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
