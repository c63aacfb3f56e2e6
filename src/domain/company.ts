// The company record as the toolkit shows it: flat, JSON-friendly, no I/O here.
import { normaliseDomain } from './normalise.js';

export const COMPANY_STATUSES = ['active', 'dormant', 'dissolved'] as const;
export type CompanyStatus = (typeof COMPANY_STATUSES)[number];

export interface ExternalId {
  source: string;
  id: string;
}

/** The fields a user may set; every one except `name` is optional. */
export interface CompanyInput {
  name: string;
  legalName: string | null;
  domain: string | null;
  website: string | null;
  registrationNumber: string | null;
  registrationCountry: string | null;
  lei: string | null;
  industry: string | null;
  employees: number | null;
  /** Exact decimal, as a string ("1250000.5"); never a float. */
  revenueAmount: string | null;
  revenueCurrency: string | null;
  addressLine1: string | null;
  addressLine2: string | null;
  city: string | null;
  region: string | null;
  postcode: string | null;
  country: string | null;
  status: CompanyStatus;
  incorporationDate: string | null;
  tags: string[];
  externalIds: ExternalId[];
}

export interface Company extends CompanyInput {
  id: number;
  version: number;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
}

/** Settable fields in display order; the order of `--fields` defaults and CSV columns. */
export const INPUT_FIELDS = [
  'name',
  'legalName',
  'domain',
  'website',
  'registrationNumber',
  'registrationCountry',
  'lei',
  'industry',
  'employees',
  'revenueAmount',
  'revenueCurrency',
  'addressLine1',
  'addressLine2',
  'city',
  'region',
  'postcode',
  'country',
  'status',
  'incorporationDate',
  'tags',
  'externalIds',
] as const satisfies readonly (keyof CompanyInput)[];

export const ALL_FIELDS = ['id', ...INPUT_FIELDS, 'version', 'createdAt', 'updatedAt', 'deletedAt'] as const satisfies readonly (keyof Company)[];
export type CompanyField = (typeof ALL_FIELDS)[number];

/** Columns of the human table when no `--fields` is given. */
export const DEFAULT_LIST_FIELDS: CompanyField[] = ['id', 'name', 'domain', 'country', 'industry', 'status', 'updatedAt'];

export const SORT_FIELDS = ['id', 'name', 'createdAt', 'updatedAt'] as const;
export type SortField = (typeof SORT_FIELDS)[number];

/** Natural keys; each is unique among live (not deleted) companies. */
export type NaturalKey =
  | { kind: 'id'; id: number }
  | { kind: 'domain'; domain: string }
  | { kind: 'lei'; lei: string }
  | { kind: 'registration'; country: string; number: string };

export function describeKey(key: NaturalKey): string {
  switch (key.kind) {
    case 'id':
      return `id ${key.id}`;
    case 'domain':
      return `domain ${key.domain}`;
    case 'lei':
      return `LEI ${key.lei}`;
    case 'registration':
      return `registration ${key.country}/${key.number}`;
  }
}

/** The natural keys a company holds (used to find conflicts and stale cache entries). */
export function keysOf(c: Pick<CompanyInput, 'domain' | 'lei' | 'registrationCountry' | 'registrationNumber'>): NaturalKey[] {
  const keys: NaturalKey[] = [];
  if (c.domain) keys.push({ kind: 'domain', domain: c.domain });
  if (c.lei) keys.push({ kind: 'lei', lei: c.lei });
  if (c.registrationCountry && c.registrationNumber) {
    keys.push({ kind: 'registration', country: c.registrationCountry, number: c.registrationNumber });
  }
  return keys;
}

export function isCompanyField(name: string): name is CompanyField {
  return (ALL_FIELDS as readonly string[]).includes(name);
}

/**
 * A reference typed by a user: 42 (id), example.com (domain), a 20-character LEI, or
 * CC:NUMBER / CC-SUB:NUMBER (registration). Returns undefined when it is none of them.
 */
export function parseCompanyRef(ref: string): NaturalKey | undefined {
  const s = ref.trim();
  if (/^\d+$/.test(s)) {
    const id = Number(s);
    return Number.isSafeInteger(id) && id > 0 ? { kind: 'id', id } : undefined;
  }
  const reg = /^([A-Za-z]{2}(?:-[A-Za-z0-9]{1,3})?):(.+)$/.exec(s);
  if (reg) return { kind: 'registration', country: reg[1]!.toUpperCase(), number: reg[2]!.replace(/\s+/g, ' ').trim().toUpperCase() };
  if (/^[A-Za-z0-9]{18}\d{2}$/.test(s) && /\d/.test(s.slice(0, 18))) return { kind: 'lei', lei: s.toUpperCase() };
  if (s.includes('.')) {
    try {
      return { kind: 'domain', domain: normaliseDomain(s) };
    } catch {
      return undefined;
    }
  }
  return undefined;
}
