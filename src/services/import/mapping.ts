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

function fieldFor(flag: string, name: string): InputField | null {
  if (name.trim() === '' || name.trim() === '-') return null;
  const f = BY_SQUASHED.get(squash(name));
  if (!f) throw usage(flag, `${JSON.stringify(name)} is not a company field`, `fields: ${INPUT_FIELDS.join(', ')}; map to "-" to ignore a column`);
  return f;
}

/**
 * Explicit mappings from `--map column=field` (repeatable) and a mapping file (a JSON object
 * {"column": "field" | null}). A field of "-" or "" (or null) ignores the column.
 */
export function explicitMappings(maps: string[], mappingFile?: string): Map<string, InputField | null> {
  const out = new Map<string, InputField | null>();
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
      out.set(squash(col), fieldFor('--mapping', field ?? ''));
    }
  }
  for (const m of maps) {
    const i = m.lastIndexOf('=');
    if (i <= 0 || m.slice(0, i).trim() === '' || m.slice(i + 1).trim() === '') {
      throw usage('--map', `${JSON.stringify(m)} must look like column=field (e.g. "Firma=name"; "Notes=-" ignores a column)`);
    }
    out.set(squash(m.slice(0, i)), fieldFor('--map', m.slice(i + 1)));
  }
  return out;
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
