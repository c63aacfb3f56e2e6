// Validation and normalisation of company input (flags, JSON on stdin, later import rows).
// zod checks the shape; the normalisers in ./normalise.ts give the canonical values.
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import { COMPANY_STATUSES, INPUT_FIELDS, type CompanyInput } from './company.js';
import { splitListCell } from './list-cell.js';
import * as n from './normalise.js';

type Issue = { field: string; message: string };

const text = (max: number) =>
  z.string().transform((v, ctx) => {
    const s = n.cleanText(v);
    if (s.length > max) ctx.addIssue({ code: 'custom', message: `must be at most ${max} characters` });
    if (n.CONTROL_CHARS.test(s)) ctx.addIssue({ code: 'custom', message: 'must not contain control characters' });
    return s === '' ? null : s;
  });

/** Wrap a normaliser so its FieldProblem becomes a zod issue on this field; '' means "clear". */
const normalised = <T>(fn: (v: string) => T) =>
  z.string().transform((v, ctx) => {
    if (v.trim() === '') return null;
    try {
      return fn(v);
    } catch (e) {
      if (e instanceof n.FieldProblem) {
        ctx.addIssue({ code: 'custom', message: e.message });
        return z.NEVER;
      }
      throw e;
    }
  });

const guard = <T>(fn: () => T, ctx: z.RefinementCtx): T => {
  try {
    return fn();
  } catch (e) {
    if (e instanceof n.FieldProblem) {
      ctx.addIssue({ code: 'custom', message: e.message });
      return z.NEVER;
    }
    throw e;
  }
};

function fieldSchemas(today: Date) {
  return {
    name: text(300),
    legalName: text(300),
    domain: normalised(n.normaliseDomain),
    website: normalised(n.normaliseWebsite),
    registrationNumber: normalised(n.normaliseRegistrationNumber),
    registrationCountry: normalised(n.normaliseRegistrationCountry),
    lei: normalised(n.normaliseLei),
    industry: text(100),
    employees: z
      .union([z.number(), z.string()])
      .transform((v, ctx) => {
        if (typeof v === 'string' && v.trim() === '') return null;
        const num = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
        if (!Number.isSafeInteger(num) || num < 0 || num > 100_000_000) {
          ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a whole number of employees (0 to 100000000)` });
          return z.NEVER;
        }
        return num;
      }),
    revenueAmount: z.union([z.number(), z.string()]).transform((v, ctx) =>
      typeof v === 'string' && v.trim() === '' ? null : guard(() => n.normaliseAmount(v), ctx),
    ),
    revenueCurrency: normalised(n.normaliseCurrency),
    addressLine1: text(200),
    addressLine2: text(200),
    city: text(100),
    region: text(100),
    postcode: text(20),
    country: normalised(n.normaliseCountry),
    status: z.string().transform((v, ctx) => {
      const s = v.trim().toLowerCase();
      if (!(COMPANY_STATUSES as readonly string[]).includes(s)) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not one of ${COMPANY_STATUSES.join(', ')}` });
        return z.NEVER;
      }
      return s as CompanyInput['status'];
    }),
    incorporationDate: normalised((v) => n.normaliseDate(v, today)),
    tags: z
      .union([z.array(z.string()), z.string()])
      .transform((v, ctx) => guard(() => n.normaliseTags(typeof v === 'string' ? splitListCell(v) : v), ctx)),
    externalIds: z
      .union([z.array(z.object({ source: z.string(), id: z.union([z.string(), z.number()]).transform(String) }).strict()), z.string()])
      .transform((v, ctx) =>
        guard(() => {
          const list = typeof v === 'string' ? splitListCell(v).filter((s) => s.trim() !== '').map(n.parseExternalId) : v;
          return n.normaliseExternalIds(list);
        }, ctx),
      ),
  } satisfies Record<(typeof INPUT_FIELDS)[number], z.ZodType>;
}

const EMPTY: Omit<CompanyInput, 'name'> = {
  legalName: null,
  domain: null,
  website: null,
  registrationNumber: null,
  registrationCountry: null,
  lei: null,
  industry: null,
  employees: null,
  revenueAmount: null,
  revenueCurrency: null,
  addressLine1: null,
  addressLine2: null,
  city: null,
  region: null,
  postcode: null,
  country: null,
  status: 'active',
  incorporationDate: null,
  tags: [],
  externalIds: [],
};

/**
 * Validate and normalise a partial input. `null` (or '') for a field means "clear it".
 * Unknown fields are rejected by name. Returns only the fields that were given.
 */
export function parseCompanyPatch(raw: unknown, today: Date = new Date()): Partial<CompanyInput> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ValidationError([{ field: 'input', message: 'must be a JSON object of company fields' }]);
  }
  const shapes = fieldSchemas(today);
  const schema = z
    .object(Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, s.nullable().optional()])))
    .strict();
  const result = schema.safeParse(raw);
  if (!result.success) throw new ValidationError(toIssues(result.error));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(result.data)) {
    if (v === undefined) continue;
    out[k] = v === null ? (k in EMPTY ? (EMPTY as Record<string, unknown>)[k] : null) : v;
  }
  return out as Partial<CompanyInput>;
}

/** Apply a patch over a base (defaults for a new company) and check the whole record. */
export function completeCompany(patch: Partial<CompanyInput>, base?: CompanyInput): CompanyInput {
  const merged = { ...EMPTY, ...(base ?? {}), ...patch } as CompanyInput;
  const issues: Issue[] = [];
  if (!merged.name) issues.push({ field: 'name', message: 'is required' });
  if (merged.registrationNumber && !merged.registrationCountry) {
    issues.push({ field: 'registrationCountry', message: 'is required with registrationNumber' });
  }
  if (merged.registrationCountry && !merged.registrationNumber) {
    issues.push({ field: 'registrationNumber', message: 'is required with registrationCountry' });
  }
  if (merged.revenueAmount && !merged.revenueCurrency) {
    issues.push({ field: 'revenueCurrency', message: 'is required with revenueAmount' });
  }
  if (merged.revenueCurrency && !merged.revenueAmount) {
    issues.push({ field: 'revenueAmount', message: 'is required with revenueCurrency' });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return merged;
}

export function validateNewCompany(raw: unknown, today: Date = new Date()): CompanyInput {
  return completeCompany(parseCompanyPatch(raw, today));
}

function toIssues(error: z.ZodError): Issue[] {
  return error.issues.map((i) => {
    const field = i.path.length > 0 ? i.path.map(String).join('.') : 'input';
    if (i.code === 'unrecognized_keys') {
      return { field: i.keys.join(', '), message: `unknown field (known fields: ${INPUT_FIELDS.join(', ')})` };
    }
    if (i.code === 'invalid_type' || i.code === 'invalid_union') {
      return { field, message: `has the wrong type (${i.message})` };
    }
    return { field, message: i.message };
  });
}
