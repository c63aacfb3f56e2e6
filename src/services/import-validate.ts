// The import hot path's validator: the same rules and messages as `company create`
// (src/domain/validate.ts), compiled once per import instead of building a zod schema per
// row. String cells (CSV, TSV) and plain JSON values take the fast path; any other shape
// falls back to validateNewCompany itself, so the two can never disagree on odd input.
// test/services/import-validate.test.ts runs both over the fixtures to prove equivalence.
import { COMPANY_STATUSES, INPUT_FIELDS, type CompanyInput } from '../domain/company.js';
import * as n from '../domain/normalise.js';
import { completeCompany, validateNewCompany } from '../domain/validate.js';
import { ValidationError } from '../errors.js';

type Issue = { field: string; message: string };
type FieldFn = (v: unknown, issues: Issue[]) => unknown;

const FALLBACK = Symbol('fallback');
const NEEDS_CLEANING = /[^\S ]|  |^ | $/;

function textField(field: string, max: number): FieldFn {
  return (v, issues) => {
    if (typeof v !== 'string') throw FALLBACK;
    // cleanText is the identity on text without runs of spaces, edge spaces or other whitespace.
    const s = v.length === 0 || NEEDS_CLEANING.test(v) ? n.cleanText(v) : v;
    if (s.length > max) issues.push({ field, message: `must be at most ${max} characters` });
    return s === '' ? null : s;
  };
}

function normalisedField(field: string, fn: (v: string) => unknown): FieldFn {
  return (v, issues) => {
    if (typeof v !== 'string') throw FALLBACK;
    if (v.trim() === '') return null;
    try {
      return fn(v);
    } catch (e) {
      if (e instanceof n.FieldProblem) {
        issues.push({ field, message: e.message });
        return null;
      }
      throw e;
    }
  };
}

function guarded(field: string, issues: Issue[], fn: () => unknown): unknown {
  try {
    return fn();
  } catch (e) {
    if (e instanceof n.FieldProblem) {
      issues.push({ field, message: e.message });
      return null;
    }
    throw e;
  }
}

/**
 * A domain normaliseDomain would return unchanged: lower-case LDH labels, a letters-only TLD,
 * no www. prefix, no punycode (domainToASCII leaves such a name as it is). Most cells of an
 * import are already canonical; they skip the URL parser.
 */
const CANONICAL_DOMAIN = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const isCanonicalDomain = (v: string): boolean => v.length <= 253 && CANONICAL_DOMAIN.test(v) && !v.startsWith('www.') && !v.includes('xn--');

const EMPTY_DEFAULTS: Record<string, unknown> = { status: 'active', tags: [], externalIds: [] };

/**
 * Memoise a pure normaliser of a low-cardinality field (countries, currencies, dates, tags):
 * an import repeats the same few thousand values, so most rows skip the work. Problems are
 * remembered too and thrown again as new FieldProblems with the same message.
 */
function memo<T>(fn: (v: string) => T, limit = 100_000): (v: string) => T {
  const cache = new Map<string, { ok: T } | { problem: string }>();
  return (v) => {
    let hit = cache.get(v);
    if (!hit) {
      try {
        hit = { ok: fn(v) };
      } catch (e) {
        if (!(e instanceof n.FieldProblem)) throw e;
        hit = { problem: e.message };
      }
      if (cache.size >= limit) cache.clear();
      cache.set(v, hit);
    }
    if ('problem' in hit) throw new n.FieldProblem(hit.problem);
    return hit.ok;
  };
}

/**
 * completeCompany(patch) for a new company, written out for speed (it runs once a row):
 * the same defaults, the same checks in the same order, the same messages.
 */
function complete(p: Record<string, unknown>): CompanyInput {
  const c: CompanyInput = {
    legalName: (p.legalName as string | null | undefined) ?? null,
    domain: (p.domain as string | null | undefined) ?? null,
    website: (p.website as string | null | undefined) ?? null,
    registrationNumber: (p.registrationNumber as string | null | undefined) ?? null,
    registrationCountry: (p.registrationCountry as string | null | undefined) ?? null,
    lei: (p.lei as string | null | undefined) ?? null,
    industry: (p.industry as string | null | undefined) ?? null,
    employees: (p.employees as number | null | undefined) ?? null,
    revenueAmount: (p.revenueAmount as string | null | undefined) ?? null,
    revenueCurrency: (p.revenueCurrency as string | null | undefined) ?? null,
    addressLine1: (p.addressLine1 as string | null | undefined) ?? null,
    addressLine2: (p.addressLine2 as string | null | undefined) ?? null,
    city: (p.city as string | null | undefined) ?? null,
    region: (p.region as string | null | undefined) ?? null,
    postcode: (p.postcode as string | null | undefined) ?? null,
    country: (p.country as string | null | undefined) ?? null,
    status: (p.status as CompanyInput['status'] | undefined) ?? 'active',
    incorporationDate: (p.incorporationDate as string | null | undefined) ?? null,
    tags: (p.tags as string[] | undefined) ?? [],
    externalIds: (p.externalIds as CompanyInput['externalIds'] | undefined) ?? [],
    name: p.name as string,
  };
  if (!c.name || !c.registrationNumber !== !c.registrationCountry || !c.revenueAmount !== !c.revenueCurrency) {
    return completeCompany(p as Partial<CompanyInput>); // throws the same ValidationError
  }
  return c;
}

export type RowValidator = (raw: Record<string, unknown>) => CompanyInput;

/** A validator equivalent to validateNewCompany(raw, today), built once. Throws ValidationError. */
export function compileRowValidator(today: Date): RowValidator {
  const fns: Record<(typeof INPUT_FIELDS)[number], FieldFn> = {
    name: textField('name', 300),
    legalName: textField('legalName', 300),
    domain: normalisedField('domain', (v) => (isCanonicalDomain(v) ? v : n.normaliseDomain(v))),
    website: normalisedField('website', n.normaliseWebsite),
    registrationNumber: normalisedField('registrationNumber', n.normaliseRegistrationNumber),
    registrationCountry: normalisedField('registrationCountry', memo(n.normaliseRegistrationCountry)),
    lei: normalisedField('lei', n.normaliseLei),
    industry: textField('industry', 100),
    employees: (v, issues) => {
      if (typeof v !== 'string' && typeof v !== 'number') throw FALLBACK;
      if (typeof v === 'string' && v.trim() === '') return null;
      const num = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
      if (!Number.isSafeInteger(num) || num < 0 || num > 100_000_000) {
        issues.push({ field: 'employees', message: `${JSON.stringify(v)} is not a whole number of employees (0 to 100000000)` });
        return null;
      }
      return num;
    },
    revenueAmount: (v, issues) => {
      if (typeof v !== 'string' && typeof v !== 'number') throw FALLBACK;
      if (typeof v === 'string' && v.trim() === '') return null;
      return guarded('revenueAmount', issues, () => n.normaliseAmount(v));
    },
    revenueCurrency: normalisedField('revenueCurrency', memo(n.normaliseCurrency)),
    addressLine1: textField('addressLine1', 200),
    addressLine2: textField('addressLine2', 200),
    city: textField('city', 100),
    region: textField('region', 100),
    postcode: textField('postcode', 20),
    country: normalisedField('country', memo(n.normaliseCountry)),
    status: (v, issues) => {
      if (typeof v !== 'string') throw FALLBACK;
      const s = v.trim().toLowerCase();
      if (!(COMPANY_STATUSES as readonly string[]).includes(s)) {
        issues.push({ field: 'status', message: `${JSON.stringify(v)} is not one of ${COMPANY_STATUSES.join(', ')}` });
        return null;
      }
      return s;
    },
    incorporationDate: normalisedField('incorporationDate', memo((v) => n.normaliseDate(v, today))),
    tags: (v, issues) => {
      if (typeof v === 'string') return guarded('tags', issues, () => tagsOf(v).slice());
      if (Array.isArray(v) && v.every((t) => typeof t === 'string')) return guarded('tags', issues, () => n.normaliseTags(v as string[]));
      throw FALLBACK;
    },
    externalIds: (v, issues) => {
      if (typeof v !== 'string') throw FALLBACK;
      return guarded('externalIds', issues, () =>
        n.normaliseExternalIds(
          v
            .split(/[;,]/)
            .filter((s) => s.trim() !== '')
            .map(n.parseExternalId),
        ),
      );
    },
  };
  const tagsOf = memo((v: string) => n.normaliseTags(v.split(/[,;]/)));
  const entries = INPUT_FIELDS.map((f) => [f, fns[f]] as const);

  return (raw) => {
    const issues: Issue[] = [];
    const patch: Record<string, unknown> = {};
    try {
      for (const [field, fn] of entries) {
        const v = raw[field];
        if (v === undefined) continue;
        if (v === null) {
          patch[field] = field in EMPTY_DEFAULTS ? EMPTY_DEFAULTS[field] : null;
          continue;
        }
        const out = fn(v, issues);
        patch[field] = out === null && field in EMPTY_DEFAULTS ? EMPTY_DEFAULTS[field] : out;
      }
    } catch (e) {
      if (e === FALLBACK) return validateNewCompany(raw, today);
      throw e;
    }
    if (issues.length > 0) throw new ValidationError(issues);
    // Unknown keys never reach here (the column mapping drops them), as zod's strict() would.
    return complete(patch);
  };
}
