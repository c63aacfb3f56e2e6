// The row model every stage shares: the import keys, the layout of a chunk's rows (values in
// the store's column order, a mask of the fields the input gave, external ids apart), the
// events the read side sends and the key strings the duplicate check compares.
import { INPUT_FIELDS, type CompanyInput } from '../../domain/company.js';
import type { InputPrefix } from '../../infra/db/import-jobs.js';
import type { InputFormat } from './formats.js';

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
export const FIELD_INDEX = new Map<string, number>(INPUT_FIELDS.map((f, i) => [f, i]));
export const IDX = {
  domain: FIELD_INDEX.get('domain')!,
  lei: FIELD_INDEX.get('lei')!,
  registrationNumber: FIELD_INDEX.get('registrationNumber')!,
  registrationCountry: FIELD_INDEX.get('registrationCountry')!,
  name: FIELD_INDEX.get('name')!,
  tags: FIELD_INDEX.get('tags')!,
};


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
  /** Streamed input: the bytes read when this chunk was cut, and their sha256 (for the checkpoint). */
  prefix?: InputPrefix;
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
export function keyString(kind: Exclude<ImportKeyKind, 'external'>, c: CompanyInput): string | undefined {
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
export function pushValues(out: (string | number | null)[], c: CompanyInput): void {
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
if (ROW_FIELDS.join(',') !== PUSHED) throw new Error('import rows: pushValues is out of step with INPUT_FIELDS');

/** A key string of keyStrings() as the user wrote it: "acme.de", "DE HRB 123", "crm:42". */
export function keyValue(key: string): string {
  return key.slice(2).replace('\u0000', ' ');
}

export function describeImportKey(key: ImportKey): string {
  return key.kind === 'external' && key.source ? `external:${key.source}` : key.kind;
}

/** The external ids of a chunk row ([[source, id], ...]), or undefined when the input gave none. */
export function parseExternalIds(json: string | null): [string, string][] | undefined {
  return json === null ? undefined : (JSON.parse(json) as [string, string][]);
}

/** Where a single-company key's values sit in a row: [domain], [lei] or [country, number]. */
export function keyColumns(kind: Exclude<ImportKeyKind, 'external'>): number[] {
  return kind === 'registration' ? [IDX.registrationCountry, IDX.registrationNumber] : [IDX[kind]];
}
