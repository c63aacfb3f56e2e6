// Column mapping: input column names -> company fields. Headers match case-, space-, '_' and
// '-'-insensitively ("Legal Name", "legal_name" -> legalName); --map and a mapping file name
// the rest. Read-only columns of an export (id, version, timestamps) are ignored quietly, so
// an export re-imports as it is.
import { readFileSync } from 'node:fs';
import { ALL_FIELDS, INPUT_FIELDS } from '../../domain/company.js';
import { CompanyctlError } from '../../errors.js';

export type InputField = (typeof INPUT_FIELDS)[number];

/** column name as written in the file -> field, or null to ignore the column. */
export type ColumnMap = Map<string, InputField | null>;

export const squash = (s: string): string => s.replace(/^\uFEFF/, '').toLowerCase().replace(/[\s_\-.]+/g, '');

const BY_SQUASHED = new Map<string, InputField>(INPUT_FIELDS.map((f) => [squash(f), f]));
// A few spellings people use for the same field.
for (const [alias, field] of [
  ['company', 'name'],
  ['companyname', 'name'],
  ['website', 'website'],
  ['url', 'website'],
  ['registrationno', 'registrationNumber'],
  ['regnumber', 'registrationNumber'],
  ['regcountry', 'registrationCountry'],
  ['revenue', 'revenueAmount'],
  ['currency', 'revenueCurrency'],
  ['zip', 'postcode'],
  ['postalcode', 'postcode'],
  ['address', 'addressLine1'],
  ['externalid', 'externalIds'],
  ['tag', 'tags'],
] as const) {
  BY_SQUASHED.set(alias, field);
}
const READ_ONLY = new Set(ALL_FIELDS.filter((f) => !(INPUT_FIELDS as readonly string[]).includes(f)).map(squash));
// The rejects file's own columns: a fixed rejects file re-imports without noise.
const REJECT_COLUMNS = new Set(['line', 'field', 'reason'].map(squash));

const usage = (flag: string, message: string, hint?: string) => new CompanyctlError('COMPANYCTL_USAGE', `${flag}: ${message}`, { field: flag, hint });

export function fieldFor(flag: string, name: string): InputField | null {
  if (name.trim() === '' || name.trim() === '-') return null;
  const f = BY_SQUASHED.get(squash(name));
  if (!f) throw usage(flag, `${JSON.stringify(name)} is not a company field`, `fields: ${INPUT_FIELDS.join(', ')}; map to "-" to ignore a column`);
  return f;
}

/** Where a derived value goes: a company field, or an external id of one source. */
export type Target = { field: InputField } | { external: string };

/** A value from a column (or JSON dot path) or a template such as "{Year}-{Rank}", for the transform stage. */
export interface ValueSource {
  from: string;
  template: boolean;
  target: Target;
}

/** The right side of a mapping: a field, "-" (ignore), or external:<source>. */
export function parseTarget(flag: string, s: string): Target | null {
  const m = /^\s*external\s*:\s*(.*)$/i.exec(s);
  if (m) {
    const source = m[1]!.trim().toLowerCase();
    if (!/^[a-z0-9][a-z0-9._-]{0,31}$/.test(source)) throw usage(flag, `${JSON.stringify(s)}: the source must be a lower-case slug (a-z 0-9 . _ -), e.g. external:sec`);
    return { external: source };
  }
  const f = fieldFor(flag, s);
  return f === null ? null : { field: f };
}

export interface Mappings {
  /** squashed column -> field (null ignores): what the header mapping reads. */
  explicit: Map<string, InputField | null>;
  /** Bare external ids, templates and second fields of a column: the transform stage's. */
  sources: ValueSource[];
  /** A left side holds a dot path (JSON: nested objects are read as "a.b.c" keys). */
  dotPaths: boolean;
}

/**
 * Mappings from `--map column=field` (repeatable) and a mapping file (a JSON object
 * {"column": "field" | null}). A field of "-" or "" (or null) ignores the column. Beyond
 * column=field: "column=external:<source>" (a column of bare ids), "{A}-{B}=target" (a
 * template of columns) and a column mapped again to another field (one column, two fields).
 */
export function readMappings(maps: string[], mappingFile?: string): Mappings {
  const pairs: [flag: string, column: string, target: string][] = [];
  if (mappingFile) {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(mappingFile, 'utf8').replace(/^\uFEFF/, ''));
    } catch (e) {
      throw usage('--mapping', `cannot read ${mappingFile}: ${(e as Error).message}`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw usage('--mapping', 'must be a JSON object {"column": "field"}');
    for (const [col, field] of Object.entries(doc)) {
      if (field !== null && typeof field !== 'string') throw usage('--mapping', `the field for ${JSON.stringify(col)} must be a string or null`);
      pairs.push(['--mapping', col, field ?? '']);
    }
  }
  for (const m of maps) {
    const i = m.lastIndexOf('=');
    if (i <= 0 || m.slice(0, i).trim() === '' || m.slice(i + 1).trim() === '') {
      throw usage('--map', `${JSON.stringify(m)} must look like column=field (e.g. "Firma=name"; "Notes=-" ignores a column)`);
    }
    pairs.push(['--map', m.slice(0, i), m.slice(i + 1)]);
  }
  const explicit = new Map<string, InputField | null>();
  const sources: ValueSource[] = [];
  let dotPaths = false;
  for (const [flag, column, right] of pairs) {
    const target = parseTarget(flag, right);
    if (column.includes('.') && !/\s/.test(column)) dotPaths = true;
    if (/\{[^{}]+\}/.test(column)) {
      if (!target) throw usage(flag, `${JSON.stringify(column)}: a template needs a field or external:<source> to fill`);
      sources.push({ from: column, template: true, target });
      continue;
    }
    const key = squash(column);
    if (target && 'external' in target) {
      sources.push({ from: column, template: false, target });
      continue;
    }
    const field = target?.field ?? null;
    const before = explicit.get(key);
    if (before && field && before !== field) sources.push({ from: column, template: false, target: { field } });
    else explicit.set(key, field);
  }
  return { explicit, sources, dotPaths };
}

/** The plain column=field part of readMappings (what the header mapping reads). */
export function explicitMappings(maps: string[], mappingFile?: string): Map<string, InputField | null> {
  return readMappings(maps, mappingFile).explicit;
}

export interface HeaderMapping {
  /** Per column index: the field, or null when the column is ignored. */
  fields: (InputField | null)[];
  unknown: string[];
  ignored: string[];
}

/** Map a header row. Two columns mapping to one field is a usage error naming both. */
export function mapHeader(header: string[], explicit: Map<string, InputField | null>): HeaderMapping {
  const fields: (InputField | null)[] = [];
  const unknown: string[] = [];
  const ignored: string[] = [];
  const taken = new Map<InputField, string>();
  for (const col of header) {
    const key = squash(col);
    let field: InputField | null | undefined = explicit.has(key) ? explicit.get(key) : BY_SQUASHED.get(key);
    if (field === undefined) {
      if (READ_ONLY.has(key) || REJECT_COLUMNS.has(key)) ignored.push(col);
      else unknown.push(col);
      field = null;
    } else if (field === null) {
      ignored.push(col);
    }
    if (field) {
      const other = taken.get(field);
      if (other !== undefined) {
        throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `columns ${JSON.stringify(other)} and ${JSON.stringify(col)} both map to ${field}`, {
          field: '--map',
          hint: `ignore one with --map "${col}=-"`,
        });
      }
      taken.set(field, col);
    }
    fields.push(field);
  }
  return { fields, unknown, ignored };
}
