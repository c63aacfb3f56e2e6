// The read stage, source -> parse -> map -> validate -> chunks: records of the input, mapped
// to company fields, validated, checked for repeated keys (dry run) and packed into chunks of
// rows in the store's column order. It runs on a worker thread in the built binary
// (reader-worker.ts), so parsing and validating overlap with the writes on the main thread;
// tests and the fallback run it in-thread. It never touches the store.
import { createHash } from 'node:crypto';
import type { CompanyInput } from '../../domain/company.js';
import { CompanyctlError, ValidationError } from '../../errors.js';
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
} from './rows.js';
import { decode, openSourceBytes, peekText, sourceSize, type InputStats } from './source.js';
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

/** Export's formula guard ('=…' written as "'=…") undone: one leading ' before = + - @ tab CR. */
const unguard = (s: string): string => (/^'+[=+\-@\t\r]/.test(s) ? s.slice(1) : s);

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
  const spec = FORMATS[format];
  if (spec.tabular) {
    const batches = spec.records(text, head);
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
    records = spec.records(text, head);
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
            reject(keyField, repeatsKey(opts.key, keyValue(key!), { line: dupOf }));
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


