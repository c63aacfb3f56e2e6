// The parse stage: the records of each input format, streamed. CSV and TSV through
// papaparse's Parser, NDJSON line by line, JSON arrays element by element (a scanner finds
// element boundaries; JSON.parse reads each element). Which format uses which parser is
// decided in formats.ts.
import { CompanyctlError } from '../../errors.js';

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

const invalid = (message: string, field: string, hint?: string) => new CompanyctlError('COMPANYCTL_INVALID_INPUT', message, { field, hint });

function recordDelimiter(head: string): '\n' | '\r\n' | '\r' {
  const i = head.search(/[\r\n]/);
  if (i < 0) return '\n';
  if (head[i] === '\n') return '\n';
  return head[i + 1] === '\n' ? '\r\n' : '\r';
}

/**
 * The longest record (in characters) a reader waits for the end of, by default: an unclosed
 * quote or a line without end must not make it hold (and rescan) the rest of the input.
 * `--max-record-size <MiB>` raises it.
 */
export const MAX_RECORD_CHARS = 1 << 20;

/** How deep a JSON record may nest (company fields are flat; tags and external ids one level more). */
export const MAX_JSON_DEPTH = 32;

function tooLong(line: number, maxRecordChars: number, what: string, hint: string): CompanyctlError {
  const size = maxRecordChars % (1 << 20) === 0 ? `${maxRecordChars / (1 << 20)} MiB` : `${maxRecordChars} characters`;
  return invalid(`line ${line}: the record that starts here is longer than ${size}${what}`, '--max-record-size', `${hint}; --max-record-size <MiB> raises the limit`);
}

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
      throw tooLong(
        line,
        maxRecordChars,
        '; is a quoted cell missing its closing "?',
        'a cell that starts with " runs to the next " followed by the delimiter or the end of a line; inside a quoted cell, write " as ""',
      );
    }
  }
  if (partial !== '') {
    const batch = records(parser.parse(partial, base, false));
    if (batch.length) yield batch;
  }
}

/**
 * Records of NDJSON: one JSON object a line; blank lines skipped; any line ending. Each text
 * chunk is scanned once: the unfinished line is kept as pieces (never rescanned), so a long
 * line costs linear time, and a line over `maxRecordChars` stops the read.
 */
export async function* ndjsonRecords(text: AsyncGenerator<string>, maxRecordChars = MAX_RECORD_CHARS): AsyncGenerator<InputRecord[]> {
  let batch: InputRecord[] = [];
  let pieces: string[] = []; // the unfinished line, as it came
  let pending = 0; // its length
  let line = 0;
  let pendingCr = false;
  const one = (s: string): InputRecord | undefined => {
    line++;
    if (s.trim() === '') return undefined;
    return parseJsonRecord(s, line);
  };
  for await (const chunk of text) {
    let s = chunk;
    if (pendingCr && s.startsWith('\n')) s = s.slice(1);
    pendingCr = false;
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const part = s.slice(start, i);
      const r = one(pending ? pieces.join('') + part : part);
      pieces = [];
      pending = 0;
      if (r) batch.push(r);
      if (c === 13) {
        if (i + 1 < s.length) {
          if (s.charCodeAt(i + 1) === 10) i++;
        } else pendingCr = true;
      }
      start = i + 1;
    }
    if (start < s.length) {
      pieces.push(s.slice(start));
      pending += s.length - start;
      if (pending > maxRecordChars) throw tooLong(line + 1, maxRecordChars, ' (one NDJSON record a line)', 'each line holds one JSON object');
    }
    if (batch.length) {
      yield batch;
      batch = [];
    }
  }
  if (pending) {
    const r = one(pieces.join(''));
    if (r) yield [r];
  }
}

/** Whether a parsed JSON value nests deeper than `max` (checked without recursion). */
function nestsDeeper(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (depth > max) return true;
    if (Array.isArray(v)) {
      for (const x of v) if (typeof x === 'object' && x !== null) stack.push([x, depth + 1]);
    } else {
      for (const k in v as Record<string, unknown>) {
        const x = (v as Record<string, unknown>)[k];
        if (typeof x === 'object' && x !== null) stack.push([x, depth + 1]);
      }
    }
  }
  return false;
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
  if (nestsDeeper(value, MAX_JSON_DEPTH)) {
    return { line, text: s, error: `nests deeper than ${MAX_JSON_DEPTH} levels of objects and arrays (company fields are flat)` };
  }
  return { line, object: value as Record<string, unknown>, text: s };
}

/**
 * Records of a JSON array of objects, streamed: a small scanner tracks strings and nesting to
 * find where each top-level element ends; JSON.parse reads the element.
 */
export async function* jsonArrayRecords(text: AsyncGenerator<string>, maxRecordChars = MAX_RECORD_CHARS): AsyncGenerator<InputRecord[]> {
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
    if (state === 'element' && start >= 0) {
      buf += chunk.slice(start);
      if (buf.length > maxRecordChars) throw tooLong(elementLine, maxRecordChars, ' (one element of the JSON array)', 'each element is one company object');
    }
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
