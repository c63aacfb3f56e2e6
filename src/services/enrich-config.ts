// The `enrich` section of the config file: checked in full when enrich runs (config loading
// stays cheap for every other command). Unknown keys are errors, like the rest of the file.
import { INPUT_FIELDS, type CompanyInput } from '../domain/company.js';
import { CompanyctlError } from '../errors.js';

export const KEY_KINDS = ['lei', 'registration', 'domain'] as const;
export type KeyKind = (typeof KEY_KINDS)[number];
export type EnrichField = keyof CompanyInput;

export interface EnrichAuth {
  /** Request header that carries the key, e.g. "Authorization" or "X-Api-Key". */
  header: string;
  /** Put before the key in the header, e.g. "Bearer". */
  scheme?: string;
  /** Environment variable holding the key; wins over the keychain. */
  env?: string;
  /** Look in the OS keychain (stored by "companyctl enrich set-key"). Default true. */
  keychain: boolean;
}

export interface EnrichConfig {
  baseUrl: string;
  auth?: EnrichAuth;
  /** Path (and query) templates per key kind: {domain}, {lei}, {country}, {number}. */
  requests: Partial<Record<KeyKind, string>>;
  /** Which key to ask by when a company has several. */
  keyOrder: KeyKind[];
  /** Company field -> dot path in the JSON response ("data.address.city", "items.0.name"). */
  fields: Partial<Record<EnrichField, string>>;
  /** Response statuses that mean "the API does not know this company". */
  notFoundStatuses: number[];
  concurrency: number;
  rate: { requests: number; perMs: number };
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** Longest Retry-After honoured; a longer one fails the attempt instead of stalling the run. */
  maxRetryAfterMs: number;
  cacheTtlSeconds: number;
}

const PLACEHOLDERS: Record<KeyKind, string[]> = { domain: ['domain'], lei: ['lei'], registration: ['country', 'number'] };

const DEFAULTS = {
  keyOrder: [...KEY_KINDS],
  notFoundStatuses: [404],
  concurrency: 4,
  rate: { requests: 10, perMs: 1000 },
  timeoutMs: 10_000,
  retries: 4,
  backoffMs: 500,
  maxBackoffMs: 30_000,
  maxRetryAfterMs: 120_000,
  cacheTtlSeconds: 86_400,
};

export function parseEnrichConfig(raw: Record<string, unknown> | undefined, file: string): EnrichConfig {
  if (!raw) {
    throw new CompanyctlError('COMPANYCTL_ENRICH_NOT_CONFIGURED', `no "enrich" section in the config file ${file}`, {
      hint: 'add "enrich": {"baseUrl": …, "requests": …, "fields": …} (see README, "companyctl enrich")',
    });
  }
  const bad = (path: string, message: string) =>
    new CompanyctlError('COMPANYCTL_CONFIG_INVALID', `config file ${file}: enrich.${path} ${message}`, { field: `enrich.${path}` });
  const known = (obj: Record<string, unknown>, keys: string[], at: string) => {
    for (const k of Object.keys(obj)) if (!keys.includes(k)) throw bad(`${at}${k}`, `is not a known setting (known: ${keys.join(', ')})`);
  };
  const object = (v: unknown, path: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(path, 'must be a JSON object');
    return v as Record<string, unknown>;
  };
  const str = (v: unknown, path: string): string => {
    if (typeof v !== 'string' || v.trim() === '') throw bad(path, 'must be a non-empty string');
    return v;
  };
  const int = (v: unknown, path: string, def: number, min: number, max: number): number => {
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(path, `must be a whole number from ${min} to ${max}`);
    return v;
  };

  known(raw, ['baseUrl', 'auth', 'requests', 'keyOrder', 'fields', 'notFoundStatuses', 'concurrency', 'rate', 'timeoutMs', 'retries', 'backoffMs', 'maxBackoffMs', 'maxRetryAfterMs', 'cacheTtlSeconds'], '');
  const baseUrl = str(raw.baseUrl, 'baseUrl').replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw bad('baseUrl', `${JSON.stringify(baseUrl)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad('baseUrl', 'must be an http(s) URL');
  if (url.username || url.password) throw bad('baseUrl', 'must not hold credentials: use enrich.auth');

  let auth: EnrichAuth | undefined;
  if (raw.auth !== undefined) {
    const a = object(raw.auth, 'auth');
    known(a, ['header', 'scheme', 'env', 'keychain'], 'auth.');
    const header = str(a.header, 'auth.header');
    if (!/^[A-Za-z0-9-]+$/.test(header)) throw bad('auth.header', 'must be a header name');
    if (a.keychain !== undefined && typeof a.keychain !== 'boolean') throw bad('auth.keychain', 'must be true or false');
    auth = {
      header,
      scheme: a.scheme === undefined ? undefined : str(a.scheme, 'auth.scheme'),
      env: a.env === undefined ? undefined : str(a.env, 'auth.env'),
      keychain: a.keychain !== false,
    };
    if (!auth.env && !auth.keychain) throw bad('auth', 'needs "env" or "keychain": true');
  }

  const req = object(raw.requests, 'requests');
  known(req, [...KEY_KINDS], 'requests.');
  const requests: Partial<Record<KeyKind, string>> = {};
  for (const [kind, t] of Object.entries(req) as [KeyKind, unknown][]) {
    const template = str(t, `requests.${kind}`);
    if (!template.startsWith('/')) throw bad(`requests.${kind}`, 'must start with "/" (a path under baseUrl)');
    const used = [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!);
    const allowed = PLACEHOLDERS[kind];
    const unknown = used.filter((u) => !allowed.includes(u));
    if (unknown.length > 0) throw bad(`requests.${kind}`, `has unknown placeholder {${unknown[0]}} (allowed: ${allowed.map((p) => `{${p}}`).join(', ')})`);
    if (used.length === 0) throw bad(`requests.${kind}`, `must use ${allowed.map((p) => `{${p}}`).join(' and ')}`);
    requests[kind] = template;
  }
  if (Object.keys(requests).length === 0) throw bad('requests', 'needs at least one of domain, lei, registration');

  let keyOrder: KeyKind[] = DEFAULTS.keyOrder;
  if (raw.keyOrder !== undefined) {
    if (!Array.isArray(raw.keyOrder) || raw.keyOrder.some((k) => !(KEY_KINDS as readonly unknown[]).includes(k))) {
      throw bad('keyOrder', `must be a list of ${KEY_KINDS.join(', ')}`);
    }
    keyOrder = raw.keyOrder as KeyKind[];
  }

  const f = object(raw.fields, 'fields');
  const fields: Partial<Record<EnrichField, string>> = {};
  for (const [field, path] of Object.entries(f)) {
    if (!(INPUT_FIELDS as readonly string[]).includes(field)) throw bad(`fields.${field}`, `is not a company field (fields: ${INPUT_FIELDS.join(', ')})`);
    const p = str(path, `fields.${field}`);
    if (!/^[^.\s]+(\.[^.\s]+)*$/.test(p)) throw bad(`fields.${field}`, `${JSON.stringify(p)} is not a dot path such as "data.address.city"`);
    fields[field as EnrichField] = p;
  }
  if (Object.keys(fields).length === 0) throw bad('fields', 'must map at least one company field to a response path');

  let notFoundStatuses = DEFAULTS.notFoundStatuses;
  if (raw.notFoundStatuses !== undefined) {
    if (!Array.isArray(raw.notFoundStatuses) || raw.notFoundStatuses.some((s) => typeof s !== 'number' || s < 400 || s > 499 || s === 429)) {
      throw bad('notFoundStatuses', 'must be a list of 4xx statuses other than 429');
    }
    notFoundStatuses = raw.notFoundStatuses as number[];
  }

  let rate = DEFAULTS.rate;
  if (raw.rate !== undefined) {
    const r = object(raw.rate, 'rate');
    known(r, ['requests', 'perMs'], 'rate.');
    rate = { requests: int(r.requests, 'rate.requests', DEFAULTS.rate.requests, 1, 100_000), perMs: int(r.perMs, 'rate.perMs', DEFAULTS.rate.perMs, 1, 86_400_000) };
  }

  return {
    baseUrl,
    auth,
    requests,
    keyOrder,
    fields,
    notFoundStatuses,
    concurrency: int(raw.concurrency, 'concurrency', DEFAULTS.concurrency, 1, 256),
    rate,
    timeoutMs: int(raw.timeoutMs, 'timeoutMs', DEFAULTS.timeoutMs, 1, 600_000),
    retries: int(raw.retries, 'retries', DEFAULTS.retries, 0, 20),
    backoffMs: int(raw.backoffMs, 'backoffMs', DEFAULTS.backoffMs, 0, 600_000),
    maxBackoffMs: int(raw.maxBackoffMs, 'maxBackoffMs', DEFAULTS.maxBackoffMs, 0, 3_600_000),
    maxRetryAfterMs: int(raw.maxRetryAfterMs, 'maxRetryAfterMs', DEFAULTS.maxRetryAfterMs, 0, 3_600_000),
    cacheTtlSeconds: int(raw.cacheTtlSeconds, 'cacheTtlSeconds', DEFAULTS.cacheTtlSeconds, 0, 31_536_000),
  };
}

/** The path and query for one company, or undefined when it holds none of the configured keys. */
export function requestPathFor(
  cfg: EnrichConfig,
  c: Pick<CompanyInput, 'domain' | 'lei' | 'registrationCountry' | 'registrationNumber'>,
): { kind: KeyKind; path: string } | undefined {
  const values: Record<KeyKind, Record<string, string> | undefined> = {
    lei: c.lei ? { lei: c.lei } : undefined,
    domain: c.domain ? { domain: c.domain } : undefined,
    registration: c.registrationCountry && c.registrationNumber ? { country: c.registrationCountry, number: c.registrationNumber } : undefined,
  };
  for (const kind of cfg.keyOrder) {
    const template = cfg.requests[kind];
    const v = values[kind];
    if (!template || !v) continue;
    return { kind, path: template.replace(/\{([^}]*)\}/g, (_m, name: string) => encodeURIComponent(v[name]!)) };
  }
  return undefined;
}
