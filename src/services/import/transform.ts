// The transform stage, for files that need more than column=field: a column of bare ids for
// one source (--map "CIK=external:sec"), a value built from several columns (--map
// "{Year}-{Rank}=external:f500"), one column into several fields, constants (--set), value maps
// (--value "status:operating=active"), dates in another layout (--date-format) and JSON
// fields by dot path. It runs only when one of these is given: a plain import never calls it.
import { joinListCell } from '../../domain/list-cell.js';
import { parseCompanyPatch } from '../../domain/validate.js';
import { CompanyctlError, ValidationError } from '../../errors.js';
import { fieldFor, squash, type InputField, type Target, type ValueSource } from './mapping.js';
import { EXTERNAL_BIT, FIELD_INDEX } from './rows.js';

export const DATE_FORMATS = ['DD/MM/YYYY', 'MM/DD/YYYY', 'YYYYMMDD'] as const;
export type DateFormat = (typeof DATE_FORMATS)[number];

/** Everything beyond plain column=field mappings; JSON-serialisable (it travels to the reader thread and into the job). */
export interface TransformSpec {
  sources: ValueSource[];
  /** --set field=value: the value of rows whose own is empty or absent. */
  constants: [InputField, string][];
  /** --value field:from=to, matched case- and edge-space-insensitively. */
  values: [InputField, string, string][];
  dateFormat?: DateFormat;
  /** JSON: where the records are (--records data); dot-separated keys. */
  records?: string;
  /** JSON: nested objects are read as dot-path keys ("attributes.entity.legalName.name"). */
  flatten: boolean;
}

export const emptyTransform = (): TransformSpec => ({ sources: [], constants: [], values: [], flatten: false });

export function isEmptyTransform(t: TransformSpec | undefined): boolean {
  return !t || (t.sources.length === 0 && t.constants.length === 0 && t.values.length === 0 && !t.dateFormat && t.records === undefined && !t.flatten);
}

const usage = (flag: string, message: string, hint?: string) => new CompanyctlError('COMPANYCTL_USAGE', `${flag}: ${message}`, { field: flag, hint });

/** The column names a template refers to ("{Year}-{Rank}" -> Year, Rank). */
export function templateColumns(template: string): string[] {
  return [...template.matchAll(/\{([^{}]+)\}/g)].map((m) => m[1]!);
}

/** --set field=value (repeatable); a value the field refuses is refused here, not on every row. */
export function parseConstants(sets: string[]): [InputField, string][] {
  return sets.map((s) => {
    const i = s.indexOf('=');
    if (i <= 0) throw usage('--set', `${JSON.stringify(s)} must look like field=value (e.g. registrationCountry=GB)`);
    const f = fieldFor('--set', s.slice(0, i));
    if (f === null) throw usage('--set', `${JSON.stringify(s)} names no field`);
    const value = s.slice(i + 1);
    try {
      parseCompanyPatch({ [f]: value });
    } catch (e) {
      if (e instanceof ValidationError) throw usage('--set', `${JSON.stringify(s)}: ${e.issues[0]!.field}: ${e.issues[0]!.message}`);
      throw e;
    }
    return [f, value];
  });
}

/** --value field:from=to (repeatable). */
export function parseValueMaps(values: string[]): [InputField, string, string][] {
  return values.map((s) => {
    const m = /^([^:=]+):(.*)=(.*)$/s.exec(s);
    if (!m) throw usage('--value', `${JSON.stringify(s)} must look like field:from=to (e.g. "status:operating=active")`);
    const f = fieldFor('--value', m[1]!);
    if (f === null) throw usage('--value', `${JSON.stringify(s)} names no field`);
    return [f, m[2]!, m[3]!];
  });
}

export function parseDateFormat(s: string | undefined): DateFormat | undefined {
  if (s === undefined) return undefined;
  const f = s.trim().toUpperCase() as DateFormat;
  if (!(DATE_FORMATS as readonly string[]).includes(f)) throw usage('--date-format', `${JSON.stringify(s)} is not a date layout this companyctl reads`, `use one of ${DATE_FORMATS.join(', ')}`);
  return f;
}

const DATE_LAYOUTS: Record<DateFormat, { re: RegExp; y: number; m: number; d: number }> = {
  'DD/MM/YYYY': { re: /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$/, d: 1, m: 2, y: 3 },
  'MM/DD/YYYY': { re: /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$/, m: 1, d: 2, y: 3 },
  YYYYMMDD: { re: /^(\d{4})(\d{2})(\d{2})$/, y: 1, m: 2, d: 3 },
};

/** A date in `format` as YYYY-MM-DD (ISO dates pass through), or a problem for the reject. */
export function convertDate(raw: string, format: DateFormat): { value: string } | { problem: string } {
  const s = raw.trim();
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return { value: s };
  const layout = DATE_LAYOUTS[format];
  const m = layout.re.exec(s);
  if (!m) return { problem: `${JSON.stringify(raw)} is not a date in the layout ${format} (--date-format)` };
  const [y, mo, d] = [Number(m[layout.y]), Number(m[layout.m]), Number(m[layout.d])];
  const iso = `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
  const t = new Date(Date.UTC(y, mo - 1, d));
  if (Number.isNaN(t.getTime()) || t.toISOString().slice(0, 10) !== iso) return { problem: `${JSON.stringify(raw)} is not a real date (read as ${format})` };
  return { value: iso };
}

/** A value of a record for a source: strings as they are, numbers as text, empty as absent. */
const asText = (v: unknown): string | undefined => {
  if (v === undefined || v === null) return undefined;
  const s = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
  return s === undefined || s.trim() === '' ? undefined : s;
};

/** Whether rows need the transform (a flatten or records path alone is the reader's business). */
export function transformsRows(t: TransformSpec): boolean {
  return t.sources.length > 0 || t.constants.length > 0 || t.values.length > 0 || !!t.dateFormat;
}

/** The columns (squashed) the transform reads: not "unknown" though no field is named after them. */
export function transformColumns(spec: TransformSpec): Set<string> {
  const out = new Set<string>();
  for (const s of spec.sources) for (const c of s.template ? templateColumns(s.from) : [s.from]) out.add(squash(c));
  return out;
}

export interface CompiledTransform {
  /** The fields every row gets from the transform (mask bits, EXTERNAL_BIT for ids). */
  mask: number;
  /**
   * Apply to one record's mapped values. `get` reads a column (or dot path) by its squashed
   * name. Returns [field, reason] when the row must be rejected.
   */
  apply(raw: Record<string, unknown>, get: (squashed: string) => unknown): [string, string] | undefined;
}

/** Compile a spec; `columns` (tabular input) lets a missing column be named before any row is read. */
export function compileTransform(spec: TransformSpec, columns?: string[]): CompiledTransform {
  const known = columns ? new Set(columns.map(squash)) : undefined;
  const need = (flag: string, name: string) => {
    if (known && !known.has(squash(name))) {
      throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `${flag}: the input has no column ${JSON.stringify(name)} (columns: ${columns!.join(', ')})`, { field: flag });
    }
  };
  let mask = 0;
  const bit = (t: Target) => ('field' in t ? 1 << FIELD_INDEX.get(t.field)! : EXTERNAL_BIT);
  const sources = spec.sources.map((s) => {
    mask |= bit(s.target);
    if (!s.template) {
      need('--map', s.from);
      return { target: s.target, read: (get: (k: string) => unknown) => asText(get(squash(s.from))) };
    }
    // "{Year}-{Rank}": literal text and column references; any empty column leaves no value.
    const parts = s.from.split(/(\{[^{}]+\})/).filter((p) => p !== '');
    const compiled: ({ text: string } | { column: string; name: string })[] = parts.map((p) =>
      p.startsWith('{') && p.endsWith('}') ? { column: squash(p.slice(1, -1)), name: p.slice(1, -1) } : { text: p },
    );
    for (const c of compiled) if ('column' in c) need('--map', c.name);
    return {
      target: s.target,
      read: (get: (k: string) => unknown) => {
        let out = '';
        for (const c of compiled) {
          if ('text' in c) out += c.text;
          else {
            const v = asText(get(c.column));
            if (v === undefined) return undefined;
            out += v.trim();
          }
        }
        return out;
      },
    };
  });
  for (const [f] of spec.constants) mask |= 1 << FIELD_INDEX.get(f)!;
  const constants = spec.constants;
  const valueMaps = new Map<InputField, Map<string, string>>();
  for (const [f, from, to] of spec.values) {
    let m = valueMaps.get(f);
    if (!m) valueMaps.set(f, (m = new Map()));
    m.set(from.trim().toLowerCase(), to);
  }
  const dateFormat = spec.dateFormat;

  return {
    mask,
    apply(raw, get) {
      let ids: string[] | undefined;
      for (const s of sources) {
        const v = s.read(get);
        if ('field' in s.target) {
          if (v !== undefined) raw[s.target.field] = v;
        } else if (v !== undefined) {
          (ids ??= []).push(`${s.target.external}:${v.trim()}`);
        }
      }
      if (ids) {
        const given = raw.externalIds;
        if (Array.isArray(given)) raw.externalIds = [...given, ...ids.map((x) => ({ source: x.slice(0, x.indexOf(':')), id: x.slice(x.indexOf(':') + 1) }))];
        else raw.externalIds = typeof given === 'string' && given.trim() !== '' ? `${given};${joinListCell(ids)}` : joinListCell(ids);
      }
      for (const [f, v] of constants) {
        const cur = raw[f];
        if (cur === undefined || cur === null || (typeof cur === 'string' && cur.trim() === '')) raw[f] = v;
      }
      for (const [f, m] of valueMaps) {
        const cur = raw[f];
        if (typeof cur !== 'string') continue;
        const to = m.get(cur.trim().toLowerCase());
        if (to !== undefined) {
          if (to === '') delete raw[f];
          else raw[f] = to;
        }
      }
      if (dateFormat) {
        const cur = raw.incorporationDate;
        if (typeof cur === 'string' && cur.trim() !== '') {
          const r = convertDate(cur, dateFormat);
          if ('problem' in r) return ['incorporationDate', r.problem];
          raw.incorporationDate = r.value;
        }
      }
      return undefined;
    },
  };
}

/** Nested objects as dot-path keys ({"a": {"b": 1}} -> {"a.b": 1}); arrays stay values. */
export function flattenRecord(obj: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(obj)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flattenRecord(v as Record<string, unknown>, `${prefix}${k}.`, out);
    else out[`${prefix}${k}`] = v;
  }
  return out;
}
