// The one table of input formats: what `--format` accepts, which file names mean which
// format, how the parse stage reads it, and what the rejects file of such an input looks like.
// Adding a format is a row here (plus its parser in parse.ts when it needs a new one).
import type { InputRecord } from './parse.js';

export interface FormatSpec {
  /** File-name endings (before an optional .gz) that mean this format. */
  extensions: readonly string[];
  /** Tabular: a header row names the columns, records are cells (CSV/TSV); else JSON objects. */
  tabular: boolean;
  /** The records of a text in this format, header row first when tabular. */
  records(text: AsyncGenerator<string>, head: string, maxRecordChars?: number): AsyncGenerator<InputRecord[]>;
  /** The rejects file: CSV rows of the original cells, or NDJSON lines holding the record. */
  rejects: 'csv' | 'ndjson';
}

// Parsers load on first use: `--help` and the flag check need only the names.
const parse = () => import('./parse.js');

const TABLE = {
  csv: {
    extensions: ['.csv'],
    tabular: true,
    records: async function* (text, head, max) {
      yield* (await parse()).delimitedRecords(text, head, ',', max);
    },
    rejects: 'csv',
  },
  tsv: {
    extensions: ['.tsv', '.tab'],
    tabular: true,
    records: async function* (text, head, max) {
      yield* (await parse()).delimitedRecords(text, head, '\t', max);
    },
    rejects: 'csv',
  },
  ndjson: {
    extensions: ['.ndjson', '.jsonl'],
    tabular: false,
    records: async function* (text, _head, max) {
      yield* (await parse()).ndjsonRecords(text, max);
    },
    rejects: 'ndjson',
  },
  json: {
    extensions: ['.json'],
    tabular: false,
    records: async function* (text, _head, max) {
      yield* (await parse()).jsonArrayRecords(text, max);
    },
    rejects: 'ndjson',
  },
} satisfies Record<string, FormatSpec>;

export type InputFormat = keyof typeof TABLE;
export const FORMATS: Readonly<Record<InputFormat, FormatSpec>> = TABLE;
export const FORMAT_NAMES = Object.keys(FORMATS) as InputFormat[];

export function formatFromName(path: string): InputFormat | undefined {
  const base = path.toLowerCase().replace(/\.gz$/, '');
  return FORMAT_NAMES.find((f) => FORMATS[f].extensions.some((e) => base.endsWith(e)));
}

/** The format of a text by its first characters: [ JSON array, { NDJSON, tabs and no commas TSV, else CSV. */
export function sniffFormat(head: string): InputFormat {
  const t = head.trimStart();
  if (t.startsWith('[')) return 'json';
  if (t.startsWith('{')) return 'ndjson';
  const firstLine = t.split(/\r\n|\r|\n/, 1)[0] ?? '';
  return firstLine.includes('\t') && !firstLine.includes(',') ? 'tsv' : 'csv';
}
