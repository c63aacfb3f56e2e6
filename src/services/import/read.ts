// The read stage, source -> parse -> map -> validate -> chunks: records of the input, mapped
// to company fields, validated, checked for repeated keys (dry run) and packed into chunks of
// rows in the store's column order. It runs on a worker thread in the built binary
// (reader-worker.ts), so parsing and validating overlap with the writes on the main thread;
// tests and the fallback run it in-thread. It never touches the store.
import type { CompanyInput } from '../../domain/company.js';
import { CompanyctlError, ValidationError } from '../../errors.js';
import type { InputPrefix } from '../../infra/db/import-jobs.js';
import { KeySet, repeatsKey } from './duplicates.js';
import { FORMATS, formatFromName, sniffFormat, type FormatSpec, type InputFormat, type RecordOptions } from './formats.js';
import { mapHeader, squash, type InputField } from './mapping.js';
import type { InputRecord } from './parse.js';
import {
  CELL_SEP,
  EXTERNAL_BIT,
  FIELD_INDEX,
  KEY_FIELD,
  describeImportKey,
  keyString,
  keyStrings,
  keyValue,
  pushValues,
  type Chunk,
  type ImportKey,
  type PipelineEvent,
  type PipelineHeader,
} from './rows.js';
import { decode, inputFiles, openSourceBytes, peekText, sourceSize, StreamHash, type InputStats } from './source.js';
import { compileTransform, flattenRecord, isEmptyTransform, transformColumns, transformsRows, type CompiledTransform, type TransformSpec } from './transform.js';
import { compileRowValidator } from './validate.js';

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
  /** Compute the input's sha256 while reading (stdin, a pipe: no checksum up front). */
  hashInput?: boolean;
  /** Resume of a streamed input: the prefix its committed rows were read from, proven before any row is sent. */
  verifyPrefix?: InputPrefix;
  /** The longest record read (characters; --max-record-size). */
  maxRecordChars?: number;
  /** How many times its compressed size a gzip input may expand to (--max-gzip-ratio). */
  maxGzipRatio?: number;
  /**
   * Check repeated keys here, with a key table in memory (dry runs: nothing is written). A
   * real import leaves it to the writer, which knows every company id it touched (1 bit an id,
   * so memory stays flat however long the file); on resume it gets the skipped rows as replay
   * chunks to relearn them.
   */
  checkDuplicates?: boolean;
  /** Beyond column=field (transform.ts); absent or empty for a plain import, which then never calls it. */
  transform?: TransformSpec;
}

/** Export's formula guard ('=…' written as "'=…") undone: one leading ' before = + - @ tab CR. */
const unguard = (s: string): string => (/^'+[=+\-@\t\r]/.test(s) ? s.slice(1) : s);

interface OpenedText {
  head: string;
  text: AsyncGenerator<string>;
}

/** The records of a folder's files, one after another, each record naming its file (lines count within it). */
async function* folderRecords(
  folder: string,
  files: string[],
  first: OpenedText,
  open: (path: string) => Promise<OpenedText>,
  spec: FormatSpec,
  recordOptions: RecordOptions | undefined,
): AsyncGenerator<InputRecord[]> {
  const prefix = folder.replace(/\/+$/, '').length + 1;
  for (let i = 0; i < files.length; i++) {
    const f = i === 0 ? first : await open(files[i]!);
    if (f.head.trim() === '') continue;
    const name = files[i]!.slice(prefix);
    for await (const batch of spec.records(f.text, f.head, recordOptions)) {
      for (const r of batch) r.file = name;
      yield batch;
    }
  }
}

/** The input opened: its text (first characters peeked) and format; a folder's first file. */
async function openInput(opts: PipelineOptions, stdin: NodeJS.ReadableStream) {
  const stats: InputStats = { bytes: 0, total: sourceSize(opts.source) };
  const hash = opts.hashInput || opts.verifyPrefix ? new StreamHash(opts.verifyPrefix) : undefined;
  // Rows after the committed part wait here until the input is proven to be the job's.
  const held: Chunk[] = [];
  const cut = (c: Chunk): Chunk[] => {
    if (hash) c.prefix = hash.snapshot();
    if (hash && !hash.prefixOk) {
      held.push(c);
      return [];
    }
    return held.length ? [...held.splice(0), c] : [c];
  };
  const transform = isEmptyTransform(opts.transform) ? undefined : opts.transform;
  const recordsPath = transform?.records !== undefined ? transform.records.split('.').filter((k) => k !== '') : undefined;
  // A folder: every *.json in it, one after another, as one input.
  const files = inputFiles(opts.source);
  const open = async (path: string): Promise<OpenedText & { encoding: string; detected?: string }> => {
    const decoded = await decode(openSourceBytes(path, stdin), stats, opts.encoding, hash, opts.maxGzipRatio);
    return { encoding: decoded.encoding, detected: decoded.detected, ...(await peekText(decoded.text)) };
  };
  const first = await open(files ? files[0]! : opts.source);
  const { head, text } = first;
  const format = opts.format ?? (files || recordsPath ? 'json' : undefined) ?? (opts.source !== '-' ? formatFromName(opts.source) : undefined) ?? sniffFormat(head);
  if (head.trim() === '' && !files) {
    throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `${opts.source === '-' ? 'stdin' : opts.source} is empty`, { field: 'file' });
  }
  if (files && FORMATS[format].tabular) throw new CompanyctlError('COMPANYCTL_USAGE', `${opts.source} is a folder: only JSON files are read from a folder`, { field: '--format' });
  const recordOptions: RecordOptions = { recordsPath, maxRecordChars: opts.maxRecordChars };
  return { stats, hash, held, cut, encoding: first.encoding, detected: first.detected, head, text, format, files, first, open, transform, recordOptions, source: opts.source };
}

/** The records of the input after its header row (tabular formats), the header's mapping and the compiled transform. */
async function readHeader(input: Awaited<ReturnType<typeof openInput>>, explicit: Map<string, InputField | null>) {
  const { format, head, text, stats, encoding, detected, transform, recordOptions, files } = input;
  const spec = FORMATS[format];
  const rowTransform = transform && transformsRows(transform) ? transform : undefined;
  if (!spec.tabular) {
    const header: PipelineHeader = { format, encoding, detectedEncoding: detected, unknown: [], ignored: [], total: stats.total };
    const records = files ? folderRecords(input.source, files, input.first, input.open, spec, recordOptions) : spec.records(text, head, recordOptions);
    const tf: CompiledTransform | undefined = rowTransform ? compileTransform(rowTransform) : undefined;
    return { records, header, fields: [] as (InputField | null)[], headerMask: 0, tf };
  }
  const batches = spec.records(text, head, recordOptions);
  const first = await batches.next();
  const headerRecord = first.done ? undefined : first.value[0];
  if (!headerRecord?.cells) throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', 'the input has no header row', { field: 'file' });
  const columns = headerRecord.cells;
  const restOfFirst = first.done ? [] : first.value.slice(1);
  const records = (async function* () {
    if (restOfFirst.length) yield restOfFirst;
    yield* batches;
  })();
  const mapping = mapHeader(columns, explicit);
  let headerMask = 0;
  for (const f of mapping.fields) if (f) headerMask |= 1 << FIELD_INDEX.get(f)!;
  let tf: CompiledTransform | undefined;
  if (rowTransform) {
    tf = compileTransform(rowTransform, columns);
    headerMask |= tf.mask;
    const used = transformColumns(rowTransform);
    mapping.unknown = mapping.unknown.filter((c) => !used.has(squash(c)));
  }
  if (!(headerMask & (1 << FIELD_INDEX.get('name')!))) {
    throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `no column maps to the required field name (columns: ${columns.join(', ')})`, {
      field: 'name',
      hint: 'name the column "name", or map it: --map "Firma=name"',
    });
  }
  const header: PipelineHeader = { format, encoding, detectedEncoding: detected, columns, unknown: mapping.unknown, ignored: mapping.ignored, total: stats.total };
  return { records, header, fields: mapping.fields, headerMask, tf };
}

/** Records -> raw field values: cells by the header's mapping, JSON keys as they appear. */
class FieldMapper {
  private readonly mapped: InputField[] = [];
  private readonly mappedIdx: number[] = [];
  /** JSON keys -> fields, learnt as they appear; unknown keys are reported the first time. */
  private readonly keyMap = new Map<string, InputField | null>();
  readonly unknown: string[] = [];
  /** The fields the last record gave (bit i = INPUT_FIELDS[i]). */
  mask = 0;

  constructor(
    fields: (InputField | null)[],
    readonly width: number,
    private readonly headerMask: number,
    private readonly explicit: Map<string, InputField | null>,
    /** Keys the transform reads (squashed): not reported as unknown. */
    private readonly usedKeys?: Set<string>,
  ) {
    fields.forEach((f, i) => {
      if (f) {
        this.mapped.push(f);
        this.mappedIdx.push(i);
      }
    });
  }

  fromCells(cells: string[]): Record<string, unknown> {
    const raw: Record<string, unknown> = {};
    const { mapped, mappedIdx } = this;
    this.mask = this.headerMask;
    for (let k = 0; k < mapped.length; k++) {
      const c = cells[mappedIdx[k]!]!;
      // An empty cell gives no value: the field gets create's default (or is cleared on update).
      if (c !== '') raw[mapped[k]!] = c.charCodeAt(0) === 39 ? unguard(c) : c;
    }
    return raw;
  }

  fromObject(object: Record<string, unknown>): Record<string, unknown> {
    const raw: Record<string, unknown> = {};
    this.mask = 0;
    for (const [k, v] of Object.entries(object)) {
      const f = this.fieldOfKey(k);
      if (!f || v === undefined) continue;
      raw[f] = v;
      this.mask |= 1 << FIELD_INDEX.get(f)!;
    }
    return raw;
  }

  private fieldOfKey(k: string): InputField | null {
    let f = this.keyMap.get(k);
    if (f !== undefined) return f;
    const m = mapHeader([k], this.explicit);
    f = m.fields[0] ?? null;
    this.keyMap.set(k, f);
    if (m.unknown.length && !this.usedKeys?.has(squash(k))) this.unknown.push(...m.unknown);
    return f;
  }
}

/** What the transform reads of the current record: a column by the header, or a (flattened) JSON key, by squashed name. */
class TransformInput {
  private readonly colIndex: Map<string, number> | undefined;
  private cells: string[] = [];
  private keys: Map<string, unknown> | undefined;
  private readonly cell = (k: string): unknown => {
    const i = this.colIndex!.get(k);
    const c = i === undefined ? undefined : this.cells[i];
    return c !== undefined && c.charCodeAt(0) === 39 ? unguard(c) : c;
  };
  private readonly key = (k: string): unknown => this.keys?.get(k);

  constructor(
    private readonly tf: CompiledTransform,
    columns: string[] | undefined,
  ) {
    this.colIndex = columns ? new Map(columns.map((c, i) => [squash(c), i])) : undefined;
  }

  /** Fills `raw` from the transform; a [field, reason] reject when a value does not fit. */
  apply(raw: Record<string, unknown>, cells: string[] | undefined, object: Record<string, unknown> | undefined): [string, string] | undefined {
    if (cells) this.cells = cells;
    else this.keys = new Map(Object.entries(object ?? {}).map(([k, v]) => [squash(k), v]));
    return this.tf.apply(raw, cells ? this.cell : this.key);
  }
}

/** A validation error as one reject: the first issue, the others named after it. */
function issueReason(e: ValidationError): [string, string] {
  const [first, ...more] = e.issues;
  if (!first) return ['record', e.message];
  return [first.field, first!.message + (more.length ? ` (and ${more.length} more: ${more.map((i) => `${i.field}: ${i.message}`).join('; ')})` : '')];
}

/** Run the read side; `stdin` is the stream for source '-'. */
export async function* runPipeline(opts: PipelineOptions, stdin: NodeJS.ReadableStream): AsyncGenerator<PipelineEvent> {
  const input = await openInput(opts, stdin);
  const { stats, hash, held, cut } = input;
  const validate = compileRowValidator(new Date(opts.today));
  const explicit = new Map(opts.explicit);
  const seen = opts.checkDuplicates ? new KeySet() : undefined;
  const keyField = KEY_FIELD[opts.key.kind];
  const keyLabel = describeImportKey(opts.key);
  const { records, header, fields, headerMask, tf } = await readHeader(input, explicit);
  yield { type: 'header', header };
  const transform = input.transform;
  const mapper = new FieldMapper(fields, header.columns?.length ?? 0, headerMask, explicit, transform ? transformColumns(transform) : undefined);
  const tfInput = tf ? new TransformInput(tf, header.columns) : undefined;
  const flatten = !!transform && (transform.flatten || transform.records !== undefined);

  let seq = 0;
  let recordNo = 0;
  const newChunk = (): Chunk => ({ seq: ++seq, records: 0, lines: [], values: [], masks: [], externalIds: [], originals: [], rejects: [], bytes: 0 });
  let chunk = newChunk();
  const replayKeys = opts.skipRecords > 0 && !opts.checkDuplicates;
  let replay: Chunk | undefined = replayKeys ? { ...newChunk(), replay: true } : undefined;
  const width = mapper.width;

  // The loop's per-record state, read by one reject function (no closure per record).
  let rec: InputRecord = { line: 0 };
  let skipping = false;
  const reject = (field: string, reason: string) => {
    if (!skipping) chunk.rejects.push(rec.file === undefined ? { line: rec.line, field, reason, cells: rec.cells, text: rec.text } : { line: rec.line, field, reason, text: rec.text, file: rec.file });
  };

  for await (const batch of records) for (rec of batch) {
    recordNo++;
    skipping = recordNo <= opts.skipRecords;
    if (!skipping) chunk.records++;
    if (replay && (!skipping || replay.lines.length >= opts.chunkSize)) {
      if (replay.lines.length) yield { type: 'chunk', chunk: replay };
      replay = skipping ? { ...newChunk(), replay: true } : undefined;
    }
    let raw: Record<string, unknown> | undefined;
    const cells = rec.cells;
    let object: Record<string, unknown> | undefined;
    if (rec.error) reject('record', rec.error);
    else if (cells && cells.length !== width) reject('record', `has ${cells.length} columns, the header has ${width}`);
    else if (cells) raw = mapper.fromCells(cells);
    else if (rec.object) {
      object = flatten ? flattenRecord(rec.object) : rec.object;
      raw = mapper.fromObject(object);
      if (mapper.unknown.length) yield { type: 'unknown', columns: mapper.unknown.splice(0) };
    } else raw = {};
    const problem = raw && tfInput?.apply(raw, cells, object);
    if (problem) {
      reject(...problem);
      raw = undefined;
    }
    let row: CompanyInput | undefined;
    if (raw) {
      try {
        row = validate(raw);
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e;
        reject(...issueReason(e));
      }
    }
    if (row) {
      // The import key: required, and (dry run) not repeated from an earlier line.
      let dupOf = 0;
      let key: string | undefined;
      if (opts.key.kind === 'external') {
        const keys = keyStrings(opts.key, row);
        if (seen) for (const k of keys) dupOf ||= seen.add(k, rec.line);
        key = keys[0];
      } else {
        key = keyString(opts.key.kind, row);
        if (seen && key !== undefined) dupOf = seen.add(key, rec.line);
      }
      const mask = tf ? mapper.mask | tf.mask : mapper.mask;
      if (key === undefined) reject(keyField, `is required: it is the import key (--key ${keyLabel})`);
      else if (dupOf) reject(keyField, repeatsKey(opts.key, keyValue(key), { line: dupOf }));
      else if (!skipping || replay) {
        const to = skipping ? replay! : chunk;
        to.lines.push(rec.line);
        pushValues(to.values, row);
        to.masks.push(mask);
        to.externalIds.push(mask & EXTERNAL_BIT ? JSON.stringify(row.externalIds.map((e) => [e.source, e.id])) : null);
        if (!skipping) chunk.originals.push(cells ? cells.join(CELL_SEP) : (rec.text ?? JSON.stringify(rec.object)));
      }
    }
    if (chunk.records >= opts.chunkSize) {
      chunk.bytes = stats.bytes;
      for (const c of cut(chunk)) yield { type: 'chunk', chunk: c };
      chunk = newChunk();
    }
  }
  if (replay?.lines.length) yield { type: 'chunk', chunk: replay };
  if (hash && !hash.prefixOk) hash.end(); // throws: the input ended before the job's prefix
  chunk.bytes = stats.bytes;
  for (const c of chunk.records > 0 ? cut(chunk) : held.splice(0)) yield { type: 'chunk', chunk: c };
  yield { type: 'end', records: recordNo, bytes: stats.bytes, checksum: hash?.end() };
}
