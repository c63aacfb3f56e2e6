// The read side of an import: input -> records -> column mapping -> validation -> in-file
// duplicate check -> chunks of rows in the store's column order. It runs on a worker thread
// in the built binary (import-worker.ts), so parsing and validating overlap with the writes
// on the main thread; tests and the fallback run it in-thread. It never touches the store.
import { createHash } from 'node:crypto';
import { INPUT_FIELDS, type CompanyInput } from '../domain/company.js';
import { CompanyctlError, ValidationError } from '../errors.js';
import {
  decode,
  delimitedRecords,
  formatFromName,
  jsonArrayRecords,
  ndjsonRecords,
  openSourceBytes,
  peekText,
  sniffFormat,
  sourceSize,
  type InputFormat,
  type InputRecord,
  type InputStats,
} from './import-input.js';
import { mapHeader, type InputField } from './import-mapping.js';
import { compileRowValidator } from './import-validate.js';

export const IMPORT_KEYS = ['domain', 'lei', 'registration', 'external'] as const;
export type ImportKeyKind = (typeof IMPORT_KEYS)[number];
export interface ImportKey {
  kind: ImportKeyKind;
  /** For `external:<source>`: match on this source's id only. */
  source?: string;
}

/** Company columns written by an import, in INPUT_FIELDS order (externalIds kept apart). */
export const ROW_FIELDS = INPUT_FIELDS.filter((f) => f !== 'externalIds');
export const WIDTH = ROW_FIELDS.length;
export const EXTERNAL_BIT = 1 << WIDTH;
const FIELD_INDEX = new Map<string, number>(INPUT_FIELDS.map((f, i) => [f, i]));
export const IDX = {
  domain: FIELD_INDEX.get('domain')!,
  lei: FIELD_INDEX.get('lei')!,
  registrationNumber: FIELD_INDEX.get('registrationNumber')!,
  registrationCountry: FIELD_INDEX.get('registrationCountry')!,
  name: FIELD_INDEX.get('name')!,
  tags: FIELD_INDEX.get('tags')!,
};

export interface PipelineOptions {
  source: string;
  format?: InputFormat;
  encoding?: string;
  /** squashed column name -> field (null: ignore), from --map and --mapping. */
  explicit: [string, InputField | null][];
  key: ImportKey;
  chunkSize: number;
  /** Records already handled by committed chunks (resume): read, counted as seen, not sent. */
  skipRecords: number;
  /** The date "in the future" is judged against (YYYY-MM-DD…), as `company create` does. */
  today: string;
  /** Compute the input's sha256 while reading (stdin, whose checksum is not known up front). */
  hashInput?: boolean;
  /**
   * Check repeated keys here, with a key table in memory (dry runs: nothing is written). A
   * real import leaves it to the writer, which knows every company id it touched (1 bit an id,
   * so memory stays flat however long the file); on resume it gets the skipped rows as replay
   * chunks to relearn them.
   */
  checkDuplicates?: boolean;
}

export interface Reject {
  line: number;
  field: string;
  reason: string;
  /** CSV/TSV: the original cells; JSON formats: the record's text. */
  cells?: string[];
  text?: string;
}

export interface Chunk {
  seq: number;
  /** Records covered by this chunk (written or rejected); the checkpoint advances by this. */
  records: number;
  lines: number[];
  /** WIDTH values a row, in ROW_FIELDS order, in the store's representation (tags as JSON). */
  values: (string | number | null)[];
  /** Per row: which fields the input gave (bit i = ROW_FIELDS[i], EXTERNAL_BIT = externalIds). */
  masks: number[];
  /** Per row: external ids as JSON [[source, id], ...], or null when not given. */
  externalIds: (string | null)[];
  /** Per row: the original record (cells joined by \u001f, or the JSON text). */
  originals: string[];
  rejects: Reject[];
  bytes: number;
  /** Rows of records a resumed import already committed: only their keys matter (records is 0). */
  replay?: boolean;
}

export interface PipelineHeader {
  format: InputFormat;
  encoding: string;
  /** CSV/TSV header as written. */
  columns?: string[];
  unknown: string[];
  ignored: string[];
  total?: number;
}

export type PipelineEvent =
  | { type: 'header'; header: PipelineHeader }
  | { type: 'chunk'; chunk: Chunk }
  | { type: 'unknown'; columns: string[] }
  | { type: 'end'; records: number; bytes: number; checksum?: string };

export const CELL_SEP = '\u001f';

/** Export's formula guard ('=…' written as "'=…") undone: one leading ' before = + - @ tab CR. */
const unguard = (s: string): string => (/^'+[=+\-@\t\r]/.test(s) ? s.slice(1) : s);

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

/** The company field each import key reads (what a reject about the key names). */
export const KEY_FIELD: Record<ImportKeyKind, string> = {
  domain: 'domain',
  lei: 'lei',
  registration: 'registrationNumber',
  external: 'externalIds',
};

/** The key strings of a validated row for --key (several for external ids), or [] if absent. */
export function keyStrings(key: ImportKey, c: CompanyInput): string[] {
  switch (key.kind) {
    case 'domain':
      return c.domain ? [`d:${c.domain}`] : [];
    case 'lei':
      return c.lei ? [`l:${c.lei}`] : [];
    case 'registration':
      return c.registrationCountry && c.registrationNumber ? [`r:${c.registrationCountry}\u0000${c.registrationNumber}`] : [];
    case 'external':
      return c.externalIds.filter((e) => !key.source || e.source === key.source).map((e) => `x:${e.source}:${e.id}`);
  }
}

/** keyStrings(key, c)[0] for the single-key kinds, without an array; undefined when absent. */
function keyString(kind: Exclude<ImportKeyKind, 'external'>, c: CompanyInput): string | undefined {
  switch (kind) {
    case 'domain':
      return c.domain ? `d:${c.domain}` : undefined;
    case 'lei':
      return c.lei ? `l:${c.lei}` : undefined;
    case 'registration':
      return c.registrationCountry && c.registrationNumber ? `r:${c.registrationCountry}\u0000${c.registrationNumber}` : undefined;
  }
}

/** A validated row's values in ROW_FIELDS order (written out: one shape, no keyed loads). */
function pushValues(out: (string | number | null)[], c: CompanyInput): void {
  out.push(
    c.name,
    c.legalName,
    c.domain,
    c.website,
    c.registrationNumber,
    c.registrationCountry,
    c.lei,
    c.industry,
    c.employees,
    c.revenueAmount,
    c.revenueCurrency,
    c.addressLine1,
    c.addressLine2,
    c.city,
    c.region,
    c.postcode,
    c.country,
    c.status,
    c.incorporationDate,
    c.tags.length === 0 ? '[]' : JSON.stringify(c.tags),
  );
}
const PUSHED = 'name,legalName,domain,website,registrationNumber,registrationCountry,lei,industry,employees,revenueAmount,revenueCurrency,addressLine1,addressLine2,city,region,postcode,country,status,incorporationDate,tags';
if (ROW_FIELDS.join(',') !== PUSHED) throw new Error('import-pipeline: pushValues is out of step with INPUT_FIELDS');

/** A key string of keyStrings() as the user wrote it: "acme.de", "DE HRB 123", "crm:42". */
function keyValue(key: string): string {
  return key.slice(2).replace('\u0000', ' ');
}

export function describeImportKey(key: ImportKey): string {
  return key.kind === 'external' && key.source ? `external:${key.source}` : key.kind;
}

/** Run the read side; `stdin` is the stream for source '-'. */
export async function* runPipeline(opts: PipelineOptions, stdin: NodeJS.ReadableStream): AsyncGenerator<PipelineEvent> {
  const stats: InputStats = { bytes: 0, total: sourceSize(opts.source) };
  const hash = opts.hashInput ? createHash('sha256') : undefined;
  const decoded = await decode(openSourceBytes(opts.source, stdin), stats, opts.encoding, hash);
  const { head, text } = await peekText(decoded.text);
  const format = opts.format ?? (opts.source !== '-' ? formatFromName(opts.source) : undefined) ?? sniffFormat(head);
  if (head.trim() === '') {
    throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `${opts.source === '-' ? 'stdin' : opts.source} is empty`, { field: 'file' });
  }
  const validate = compileRowValidator(new Date(opts.today));
  const explicit = new Map(opts.explicit);
  const seen = opts.checkDuplicates ? new KeySet() : undefined;
  const keyField = KEY_FIELD[opts.key.kind];
  const keyLabel = describeImportKey(opts.key);

  let records: AsyncGenerator<InputRecord[]>;
  let columns: string[] | undefined;
  let fields: (InputField | null)[] = [];
  let headerMask = 0;
  if (format === 'csv' || format === 'tsv') {
    const batches = delimitedRecords(text, head, format === 'csv' ? ',' : '\t');
    const first = await batches.next();
    const headerRecord = first.done ? undefined : first.value[0];
    if (!headerRecord?.cells) throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', 'the input has no header row', { field: 'file' });
    columns = headerRecord.cells;
    const restOfFirst = first.done ? [] : first.value.slice(1);
    records = (async function* () {
      if (restOfFirst.length) yield restOfFirst;
      yield* batches;
    })();
    const mapping = mapHeader(columns, explicit);
    fields = mapping.fields;
    for (const f of fields) if (f) headerMask |= 1 << FIELD_INDEX.get(f)!;
    if (!fields.includes('name')) {
      throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `no column maps to the required field name (columns: ${columns.join(', ')})`, {
        field: 'name',
        hint: 'name the column "name", or map it: --map "Firma=name"',
      });
    }
    yield { type: 'header', header: { format, encoding: decoded.encoding, columns, unknown: mapping.unknown, ignored: mapping.ignored, total: stats.total } };
  } else {
    records = format === 'json' ? jsonArrayRecords(text) : ndjsonRecords(text);
    yield { type: 'header', header: { format, encoding: decoded.encoding, unknown: [], ignored: [], total: stats.total } };
  }

  // JSON keys -> fields, learnt as they appear; unknown keys are reported the first time.
  const keyMap = new Map<string, InputField | null>();
  const reportedUnknown: string[] = [];
  const fieldOfKey = (k: string): InputField | null => {
    let f = keyMap.get(k);
    if (f !== undefined) return f;
    const m = mapHeader([k], explicit);
    f = m.fields[0] ?? null;
    keyMap.set(k, f);
    if (m.unknown.length) reportedUnknown.push(...m.unknown);
    return f;
  };

  let seq = 0;
  let recordNo = 0;
  const newChunk = (): Chunk => ({ seq: ++seq, records: 0, lines: [], values: [], masks: [], externalIds: [], originals: [], rejects: [], bytes: 0 });
  let chunk = newChunk();
  const replayKeys = opts.skipRecords > 0 && !opts.checkDuplicates;
  let replay: Chunk | undefined = replayKeys ? { ...newChunk(), replay: true } : undefined;
  const width = columns?.length ?? 0;
  const mapped: InputField[] = [];
  const mappedIdx: number[] = [];
  fields.forEach((f, i) => {
    if (f) {
      mapped.push(f);
      mappedIdx.push(i);
    }
  });

  // The loop's per-record state, read by one reject function (no closure per record).
  let rec: InputRecord = { line: 0 };
  let skipping = false;
  const reject = (field: string, reason: string) => {
    if (!skipping) chunk.rejects.push({ line: rec.line, field, reason, cells: rec.cells, text: rec.text });
  };
  const nMapped = mapped.length;

  for await (const batch of records) for (rec of batch) {
    recordNo++;
    skipping = recordNo <= opts.skipRecords;
    if (!skipping) chunk.records++;
    if (replay && (!skipping || replay.lines.length >= opts.chunkSize)) {
      if (replay.lines.length) yield { type: 'chunk', chunk: replay };
      replay = skipping ? { ...newChunk(), replay: true } : undefined;
    }
    if (rec.error) {
      reject('record', rec.error);
    } else {
      const raw: Record<string, unknown> = {};
      let mask = 0;
      let ok = true;
      const cells = rec.cells;
      if (cells) {
        if (cells.length !== width) {
          reject('record', `has ${cells.length} columns, the header has ${width}`);
          ok = false;
        } else {
          mask = headerMask;
          for (let k = 0; k < nMapped; k++) {
            const c = cells[mappedIdx[k]!]!;
            // An empty cell gives no value: the field gets create's default (or is cleared on update).
            if (c !== '') raw[mapped[k]!] = c.charCodeAt(0) === 39 ? unguard(c) : c;
          }
        }
      } else if (rec.object) {
        for (const [k, v] of Object.entries(rec.object)) {
          const f = fieldOfKey(k);
          if (!f || v === undefined) continue;
          raw[f] = v;
          mask |= 1 << FIELD_INDEX.get(f)!;
        }
        if (reportedUnknown.length) yield { type: 'unknown', columns: reportedUnknown.splice(0) };
      }
      if (ok) {
        let input: CompanyInput | undefined;
        try {
          input = validate(raw);
        } catch (e) {
          if (!(e instanceof ValidationError)) throw e;
          for (const issue of e.issues.slice(0, 1)) reject(issue.field, issue.message + (e.issues.length > 1 ? ` (and ${e.issues.length - 1} more: ${e.issues.slice(1).map((i) => `${i.field}: ${i.message}`).join('; ')})` : ''));
        }
        if (input) {
          let dupOf = 0;
          let hasKey = true;
          let key: string | undefined;
          if (opts.key.kind === 'external') {
            const keys = keyStrings(opts.key, input);
            hasKey = keys.length > 0;
            if (seen) for (const k of keys) dupOf ||= seen.add(k, rec.line);
            key = keys[0];
          } else {
            key = keyString(opts.key.kind, input);
            if (key === undefined) hasKey = false;
            else if (seen) dupOf = seen.add(key, rec.line);
          }
          if (!hasKey) {
            reject(keyField, `is required: it is the import key (--key ${keyLabel})`);
          } else if (dupOf) {
            reject(keyField, `repeats the ${keyLabel} key ${keyValue(key!)} of line ${dupOf} in this file`);
          } else if (!skipping || replay) {
            const to = skipping ? replay! : chunk;
            to.lines.push(rec.line);
            pushValues(to.values, input);
            to.masks.push(mask);
            to.externalIds.push(mask & EXTERNAL_BIT ? JSON.stringify(input.externalIds.map((e) => [e.source, e.id])) : null);
            if (!skipping) chunk.originals.push(cells ? cells.join(CELL_SEP) : (rec.text ?? JSON.stringify(rec.object)));
          }
        }
      }
    }
    if (chunk.records >= opts.chunkSize) {
      chunk.bytes = stats.bytes;
      yield { type: 'chunk', chunk };
      chunk = newChunk();
    }
  }
  if (replay?.lines.length) yield { type: 'chunk', chunk: replay };
  if (chunk.records > 0) {
    chunk.bytes = stats.bytes;
    yield { type: 'chunk', chunk };
  }
  yield { type: 'end', records: recordNo, bytes: stats.bytes, checksum: hash?.digest('hex') };
}


