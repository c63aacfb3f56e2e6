// Reading an import's input: a file or stdin, gzip by its magic bytes, the text encoding
// (BOM-detected UTF-8 / UTF-16, else --encoding, UTF-8 by default and checked strictly), the
// format (flag, extension or a sniff of the first bytes), and the records of each format,
// streamed: CSV and TSV through papaparse's Parser, NDJSON line by line, JSON arrays
// element by element (a scanner finds element boundaries; JSON.parse reads each element).
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CompanyctlError } from '../errors.js';

export const FORMATS = ['csv', 'tsv', 'ndjson', 'json'] as const;
export type InputFormat = (typeof FORMATS)[number];

export interface InputRecord {
  /** 1-based line of the file where the record starts. */
  line: number;
  cells?: string[];
  object?: Record<string, unknown>;
  /** The record as written (JSON formats), for the rejects file. */
  text?: string;
  /** A record that could not be read at all (bad quoting, bad JSON). */
  error?: string;
}

export interface InputStats {
  /** Bytes read from the source (compressed bytes for .gz). */
  bytes: number;
  /** Size of the source file, when it is a file. */
  total?: number;
}

const invalid = (message: string, field: string, hint?: string) => new CompanyctlError('COMPANYCTL_INVALID_INPUT', message, { field, hint });

/** sha256 of a file's bytes, streamed. */
export async function fileChecksum(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const b of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(b as Buffer);
  return h.digest('hex');
}

export function formatFromName(path: string): InputFormat | undefined {
  const base = path.toLowerCase().replace(/\.gz$/, '');
  if (base.endsWith('.csv')) return 'csv';
  if (base.endsWith('.tsv') || base.endsWith('.tab')) return 'tsv';
  if (base.endsWith('.ndjson') || base.endsWith('.jsonl')) return 'ndjson';
  if (base.endsWith('.json')) return 'json';
  return undefined;
}

export function sourceSize(path: string): number | undefined {
  if (path === '-') return undefined;
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

export function openSourceBytes(path: string, stdin: NodeJS.ReadableStream): AsyncIterable<Buffer> {
  if (path === '-') return stdin as AsyncIterable<Buffer>;
  try {
    statSync(path);
  } catch (e) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, {
      field: 'file',
    });
  }
  // 32 KiB reads: each decoded chunk (and the cells papaparse slices out of it) stays under V8's
  // large-object size, so it dies young in the reader's new space instead of piling up in its
  // old generation until a full collection (1M rows: reader heap 48 -> 36 MB, re-run 10.2 -> 8.4 s).
  return createReadStream(path, { highWaterMark: 1 << 15 }) as AsyncIterable<Buffer>;
}

/** Raw bytes -> decompressed bytes (gzip detected by its magic number), counting raw bytes. */
async function* decompressed(src: AsyncIterable<Buffer>, stats: InputStats, hash?: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.length === 0) first = await it.next();
  if (first.done) return;
  const firstBuf = Buffer.from(first.value);
  async function* counted(): AsyncGenerator<Buffer> {
    stats.bytes += firstBuf.length;
    hash?.update(firstBuf);
    yield firstBuf;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      const b = Buffer.from(r.value);
      stats.bytes += b.length;
      hash?.update(b);
      yield b;
    }
  }
  if (firstBuf[0] === 0x1f && firstBuf[1] === 0x8b) {
    const gunzip = createGunzip();
    const input = Readable.from(counted());
    input.on('error', (e) => gunzip.destroy(e));
    input.pipe(gunzip);
    try {
      for await (const b of gunzip) yield b as Buffer;
    } catch (e) {
      throw invalid(`the gzip input is damaged: ${(e as Error).message}`, 'file');
    }
    return;
  }
  yield* counted();
}

export interface DecodedInput {
  encoding: string;
  text: AsyncGenerator<string>;
}

/** Bytes -> text. A BOM decides UTF-8 / UTF-16; otherwise `encoding` (default UTF-8, strict). */
export async function decode(src: AsyncIterable<Buffer>, stats: InputStats, encoding: string | undefined, hash?: ReturnType<typeof createHash>): Promise<DecodedInput> {
  const { default: iconv } = await import('iconv-lite');
  if (encoding !== undefined && !iconv.encodingExists(encoding)) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `--encoding: ${JSON.stringify(encoding)} is not an encoding this companyctl knows`, {
      field: '--encoding',
      hint: 'e.g. utf-8, utf-16le, windows-1252, latin1, iso-8859-15, macintosh, cp850',
    });
  }
  const bytes = decompressed(src, stats, hash);
  const head = await bytes.next();
  const first = head.done ? Buffer.alloc(0) : head.value;
  let enc = (encoding ?? 'utf-8').toLowerCase();
  let skip = 0;
  if (first[0] === 0xef && first[1] === 0xbb && first[2] === 0xbf) [enc, skip] = ['utf-8', 3];
  else if (first[0] === 0xff && first[1] === 0xfe) [enc, skip] = ['utf-16le', 2];
  else if (first[0] === 0xfe && first[1] === 0xff) [enc, skip] = ['utf-16be', 2];
  const isUtf8 = enc === 'utf-8' || enc === 'utf8';

  async function* text(): AsyncGenerator<string> {
    let offset = 0;
    const chunks = (async function* () {
      if (!head.done) yield first.subarray(skip);
      yield* bytes;
    })();
    if (isUtf8) {
      const dec = new TextDecoder('utf-8', { fatal: true });
      for await (const b of chunks) {
        try {
          const s = dec.decode(b, { stream: true });
          if (s) yield s;
        } catch {
          throw notUtf8(offset, b);
        }
        offset += b.length;
      }
      try {
        const s = dec.decode();
        if (s) yield s;
      } catch {
        throw notUtf8(offset, Buffer.alloc(0));
      }
      return;
    }
    const dec = iconv.getDecoder(enc);
    for await (const b of chunks) {
      const s = dec.write(b);
      if (s) yield s;
    }
    const s = dec.end();
    if (s) yield s;
  }
  return { encoding: isUtf8 ? 'utf-8' : enc, text: text() };
}

function notUtf8(offset: number, chunk: Buffer): CompanyctlError {
  // Find the first bad byte of the chunk for the message (cheap: only on failure).
  let at = 0;
  for (let i = 1; i <= chunk.length; i++) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(chunk.subarray(0, i), { stream: true });
    } catch {
      at = i - 1;
      break;
    }
  }
  return invalid(`the input is not valid UTF-8 (byte ${offset + at + 1})`, '--encoding', 'pass the file\'s encoding, e.g. --encoding windows-1252 (or latin1)');
}

/** Peek the first text chunk without losing it. */
export async function peekText(text: AsyncGenerator<string>): Promise<{ head: string; text: AsyncGenerator<string> }> {
  let head = '';
  const buffered: string[] = [];
  while (head.trim().length === 0) {
    const r = await text.next();
    if (r.done) break;
    buffered.push(r.value);
    head += r.value;
  }
  return {
    head,
    text: (async function* () {
      yield* buffered;
      yield* text;
    })(),
  };
}

export function sniffFormat(head: string): InputFormat {
  const t = head.trimStart();
  if (t.startsWith('[')) return 'json';
  if (t.startsWith('{')) return 'ndjson';
  const firstLine = t.split(/\r\n|\r|\n/, 1)[0] ?? '';
  return firstLine.includes('\t') && !firstLine.includes(',') ? 'tsv' : 'csv';
}

function recordDelimiter(head: string): '\n' | '\r\n' | '\r' {
  const i = head.search(/[\r\n]/);
  if (i < 0) return '\n';
  if (head[i] === '\n') return '\n';
  return head[i + 1] === '\n' ? '\r\n' : '\r';
}

/** The longest record (in characters) the CSV/TSV reader waits for the end of: a quote that is never closed must not make it hold the rest of the file. */
export const MAX_RECORD_CHARS = 1 << 20;

/** papaparse's error codes (all of them quoting problems for its Parser) in the words of a reject. */
const CSV_PROBLEMS: Record<string, string> = {
  InvalidQuotes: 'a quoted cell has a " that neither ends the cell nor is doubled ("")',
  MissingQuotes: 'a quoted cell is never closed',
};

/**
 * Records of a CSV or TSV text, header included (the first record), in batches (one per text
 * chunk: an await per record would cost more than parsing it). papaparse's Parser reads each
 * chunk the way its ChunkStreamer drives it: the text after the last complete record plus the
 * new chunk, the last (maybe cut) record held back for the next round. Lines are counted here
 * (records + line breaks inside cells + blank lines). A record papaparse flags (bad quoting)
 * becomes one `error` record; a record longer than `maxRecordChars` stops the read.
 */
export async function* delimitedRecords(
  text: AsyncGenerator<string>,
  head: string,
  delimiter: ',' | '\t',
  maxRecordChars = MAX_RECORD_CHARS,
): AsyncGenerator<InputRecord[]> {
  const { default: Papa } = await import('papaparse');
  const parser = new Papa.Parser({ delimiter, newline: recordDelimiter(head), quoteChar: '"' });
  let line = 1; // the line the next record starts on
  let partial = ''; // the text after the last complete record
  let base = 0; // where `partial` starts in the whole text (papaparse's cursor counts from there)

  const records = (result: { data: string[][]; errors: Papa.ParseError[] }): InputRecord[] => {
    const { data, errors } = result;
    // errors[].row indexes this parse's data. An error on the held-back last record (row ===
    // data.length) is dropped: it is reported again when that record is read whole.
    let bad: Map<number, string[]> | undefined;
    for (const e of errors) {
      if (e.row === undefined || e.row >= data.length) continue;
      const reason = CSV_PROBLEMS[e.code] ?? e.message;
      bad ??= new Map();
      const reasons = bad.get(e.row);
      if (!reasons) bad.set(e.row, [reason]);
      else if (!reasons.includes(reason)) reasons.push(reason);
    }
    const batch: InputRecord[] = [];
    for (let i = 0; i < data.length; i++) {
      const cells = data[i]!;
      const at = line;
      line++;
      for (let k = 0; k < cells.length; k++) {
        const c = cells[k]!;
        if (c.length > 0 && (c.indexOf('\n') >= 0 || c.indexOf('\r') >= 0)) line += (c.match(/\r\n|\r|\n/g) ?? []).length;
      }
      const reasons = bad?.get(i);
      if (reasons) {
        // A bad quote makes papaparse read on, across line ends, to the next " that can end a
        // cell: say which lines went into this one record.
        const last = line - 1 - (/[\r\n]$/.test(cells[cells.length - 1]!) ? 1 : 0);
        const span = last > at ? ` (lines ${at}-${last} were read as this one record)` : '';
        batch.push({ line: at, error: `cannot read this CSV record: ${reasons.join('; ')}${span}` });
      } else if (cells.length !== 1 || cells[0] !== '') batch.push({ line: at, cells }); // else a blank line
    }
    return batch;
  };

  for await (const chunk of text) {
    const input = partial + chunk;
    const result = parser.parse(input, base, true);
    partial = input.substring(result.meta.cursor - base);
    base = result.meta.cursor;
    const batch = records(result);
    if (batch.length) yield batch;
    if (partial.length > maxRecordChars) {
      const size = maxRecordChars % (1 << 20) === 0 ? `${maxRecordChars / (1 << 20)} MiB` : `${maxRecordChars} characters`;
      throw invalid(
        `line ${line}: the record that starts here is longer than ${size}; is a quoted cell missing its closing "?`,
        'file',
        'a cell that starts with " runs to the next " followed by the delimiter or the end of a line; inside a quoted cell, write " as ""',
      );
    }
  }
  if (partial !== '') {
    const batch = records(parser.parse(partial, base, false));
    if (batch.length) yield batch;
  }
}

/** Records of NDJSON: one JSON object a line; blank lines skipped; any line ending. */
export async function* ndjsonRecords(text: AsyncGenerator<string>): AsyncGenerator<InputRecord[]> {
  let batch: InputRecord[] = [];
  let rest = '';
  let line = 0;
  let pendingCr = false;
  const one = (s: string): InputRecord | undefined => {
    line++;
    if (s.trim() === '') return undefined;
    return parseJsonRecord(s, line);
  };
  for await (const chunk of text) {
    let s = rest + chunk;
    if (pendingCr && s.startsWith('\n')) s = s.slice(1);
    pendingCr = false;
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const r = one(s.slice(start, i));
      if (r) batch.push(r);
      if (c === 13) {
        if (i + 1 < s.length) {
          if (s.charCodeAt(i + 1) === 10) i++;
        } else pendingCr = true;
      }
      start = i + 1;
    }
    rest = s.slice(start);
    if (batch.length) {
      yield batch;
      batch = [];
    }
  }
  if (rest !== '') {
    const r = one(rest);
    if (r) yield [r];
  }
}

function parseJsonRecord(s: string, line: number): InputRecord {
  let value: unknown;
  try {
    value = JSON.parse(s);
  } catch (e) {
    return { line, text: s, error: `not valid JSON: ${(e as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { line, text: s, error: 'must be a JSON object of company fields' };
  }
  return { line, object: value as Record<string, unknown>, text: s };
}

/**
 * Records of a JSON array of objects, streamed: a small scanner tracks strings and nesting to
 * find where each top-level element ends; JSON.parse reads the element.
 */
export async function* jsonArrayRecords(text: AsyncGenerator<string>): AsyncGenerator<InputRecord[]> {
  let batch: InputRecord[] = [];
  let state: 'before' | 'between' | 'element' | 'after' = 'before';
  let line = 1;
  let elementLine = 1;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let buf = '';
  for await (const chunk of text) {
    let start = state === 'element' ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i]!;
      if (ch === '\n' || (ch === '\r' && chunk[i + 1] !== '\n')) line++;
      if (state === 'element') {
        if (inString) {
          if (escaped) escaped = false;
          else if (ch === '\\') escaped = true;
          else if (ch === '"') inString = false;
          continue;
        }
        if (ch === '"') inString = true;
        else if (ch === '{' || ch === '[') depth++;
        else if (ch === '}' || ch === ']') {
          depth--;
          if (depth < 0) {
            // the closing bracket of the array right after an element without a comma
            buf += chunk.slice(start, i);
            batch.push(parseJsonRecord(buf.trim(), elementLine));
            buf = '';
            state = 'after';
            continue;
          }
        } else if (ch === ',' && depth === 0) {
          buf += chunk.slice(start, i);
          batch.push(parseJsonRecord(buf.trim(), elementLine));
          buf = '';
          state = 'between';
        }
        continue;
      }
      if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') continue;
      if (state === 'before') {
        if (ch !== '[') throw invalid(`line ${line}: a JSON import must be an array of objects ([{...}, ...])`, 'file');
        state = 'between';
      } else if (state === 'between') {
        if (ch === ']') {
          state = 'after';
          continue;
        }
        state = 'element';
        elementLine = line;
        depth = 0;
        start = i;
        i--; // re-read this character as part of the element
      } else if (state === 'after') {
        throw invalid(`line ${line}: unexpected text after the end of the JSON array`, 'file');
      }
    }
    if (state === 'element' && start >= 0) buf += chunk.slice(start);
    if (batch.length) {
      yield batch;
      batch = [];
    }
  }
  if (state === 'element') {
    throw invalid(`line ${elementLine}: the JSON array is cut off (no closing ])`, 'file');
  }
  if (state === 'before') throw invalid('the input is empty: expected a JSON array of objects', 'file');
}
