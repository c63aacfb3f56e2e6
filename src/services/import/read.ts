// The read stage, source -> parse -> map -> validate -> chunks: records of the input, mapped
// to company fields, validated, checked for repeated keys (dry run) and packed into chunks of
// rows in the store's column order. It runs on a worker thread in the built binary
// (reader-worker.ts), so parsing and validating overlap with the writes on the main thread;
// tests and the fallback run it in-thread. It never touches the store.
import type { CompanyInput } from '../../domain/company.js';
import { CompanyctlError, ValidationError } from '../../errors.js';
import type { InputPrefix } from '../../infra/db/import-jobs.js';
import { KeySet, repeatsKey } from './duplicates.js';
import { FORMATS, formatFromName, sniffFormat, type InputFormat } from './formats.js';
import { mapHeader, type InputField } from './mapping.js';
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
import { decode, openSourceBytes, peekText, sourceSize, StreamHash, type InputStats } from './source.js';
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
}

/** Export's formula guard ('=…' written as "'=…") undone: one leading ' before = + - @ tab CR. */
const unguard = (s: string): string => (/^'+[=+\-@\t\r]/.test(s) ? s.slice(1) : s);

/** The input opened: its text (first characters peeked) and format. */
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
  const decoded = await decode(openSourceBytes(opts.source, stdin), stats, opts.encoding, hash, opts.maxGzipRatio);
  const { head, text } = await peekText(decoded.text);
  const format = opts.format ?? (opts.source !== '-' ? formatFromName(opts.source) : undefined) ?? sniffFormat(head);
  if (head.trim() === '') {
    throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `${opts.source === '-' ? 'stdin' : opts.source} is empty`, { field: 'file' });
  }
  return { stats, hash, held, cut, encoding: decoded.encoding, head, text, format };
}

/** The records of the input after its header row (tabular formats), and the header's mapping. */
async function readHeader(input: Awaited<ReturnType<typeof openInput>>, explicit: Map<string, InputField | null>, maxRecordChars?: number) {
  const { format, head, text, stats, encoding } = input;
  const spec = FORMATS[format];
  if (!spec.tabular) {
    const header: PipelineHeader = { format, encoding, unknown: [], ignored: [], total: stats.total };
    return { records: spec.records(text, head, maxRecordChars), header, fields: [] as (InputField | null)[], headerMask: 0 };
  }
  const batches = spec.records(text, head, maxRecordChars);
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
  if (!mapping.fields.includes('name')) {
    throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `no column maps to the required field name (columns: ${columns.join(', ')})`, {
      field: 'name',
      hint: 'name the column "name", or map it: --map "Firma=name"',
    });
  }
  const header: PipelineHeader = { format, encoding, columns, unknown: mapping.unknown, ignored: mapping.ignored, total: stats.total };
  return { records, header, fields: mapping.fields, headerMask };
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
    if (m.unknown.length) this.unknown.push(...m.unknown);
    return f;
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
  const { records, header, fields, headerMask } = await readHeader(input, explicit, opts.maxRecordChars);
  yield { type: 'header', header };
  const mapper = new FieldMapper(fields, header.columns?.length ?? 0, headerMask, explicit);

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
    if (!skipping) chunk.rejects.push({ line: rec.line, field, reason, cells: rec.cells, text: rec.text });
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
    if (rec.error) reject('record', rec.error);
    else if (cells && cells.length !== width) reject('record', `has ${cells.length} columns, the header has ${width}`);
    else if (cells) raw = mapper.fromCells(cells);
    else if (rec.object) {
      raw = mapper.fromObject(rec.object);
      if (mapper.unknown.length) yield { type: 'unknown', columns: mapper.unknown.splice(0) };
    } else raw = {};
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
      const mask = mapper.mask;
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
