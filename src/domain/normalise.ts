// Pure normalisers for company fields. Each returns the canonical value or throws a
// FieldProblem whose message completes the sentence `<field>: <message>`.
import { domainToASCII } from 'node:url';
import { isCalendarDate } from './dates.js';
import { isAlpha2, lookupCountry } from './countries.js';

export class FieldProblem extends Error {}

const fail = (message: string): never => {
  throw new FieldProblem(message);
};

/** C0 and C1 control characters (after whitespace is collapsed): never stored, never printed raw. */
export const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** Whitespace at or above U+1680 that cleanText collapses (Unicode spaces and line separators; not U+FEFF). */
const isWideSpace = (c: number): boolean =>
  c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;

/**
 * The whitespace cleanText collapses (README, company fields): \s without U+FEFF, which is a
 * zero-width format character (a byte-order mark), not a space.
 */
const SPACES = /[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/g;
const EDGE_SPACES = /^[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

/**
 * True when `value` is not empty, cleanText(value) === value and it has no CONTROL_CHARS:
 * no whitespace but single spaces between other characters. A character scan, cheaper than
 * the regexes for the usual already-clean cell.
 */
export function isPlainText(value: string): boolean {
  const len = value.length;
  if (len === 0 || value.charCodeAt(0) === 32 || value.charCodeAt(len - 1) === 32) return false;
  let prev = 0;
  for (let i = 0; i < len; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x7f) {
      if (c < 32 || (c === 32 && prev === 32)) return false;
    } else if (c <= 0xa0 || (c >= 0x1680 && isWideSpace(c))) {
      return false; // DEL, C1 controls, no-break space, other Unicode spaces
    }
    prev = c;
  }
  return true;
}

/** Collapse inner whitespace and trim; '' stays ''. */
export function cleanText(value: string): string {
  if (isPlainText(value)) return value;
  return value.replace(EDGE_SPACES, '').replace(SPACES, ' ');
}

/** example.com from "https://WWW.Example.com/about", "example.com." or "bücher.de" (to punycode). */
export function normaliseDomain(raw: string): string {
  let s = raw.trim().toLowerCase();
  s = s.replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  s = s.replace(/^[^@/]*@/, '');
  s = s.split(/[/?#]/, 1)[0] ?? '';
  s = s.replace(/:\d+$/, '').replace(/\.$/, '');
  if (s.startsWith('www.')) s = s.slice(4);
  const ascii = domainToASCII(s);
  const labels = ascii.split('.');
  const valid =
    ascii.length > 0 &&
    ascii.length <= 253 &&
    labels.length >= 2 &&
    labels.every((l) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(l)) &&
    /^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/.test(labels[labels.length - 1] ?? '');
  if (!valid) fail(`${JSON.stringify(raw)} is not a domain name`);
  return ascii;
}

/** https://example.com/ from "example.com"; only http and https. */
export function normaliseWebsite(raw: string): string {
  const s = raw.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:/i.test(s) ? s : `https://${s}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return fail(`${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`${JSON.stringify(raw)} must be an http or https URL`);
  if (url.username || url.password) fail('must not contain a user name or password');
  normaliseDomain(url.hostname);
  return url.href;
}

/** ISO 3166-1 alpha-2, upper case, from alpha-2, alpha-3 ("DEU") or an English name ("Germany"). */
export function normaliseCountry(raw: string): string {
  const r = lookupCountry(raw);
  if ('problem' in r) return fail(r.problem);
  return r.code;
}

/** ISO 3166-1 alpha-2 (from a code or name, as normaliseCountry), or an ISO 3166-2 subdivision such as US-DE. */
export function normaliseRegistrationCountry(raw: string): string {
  const s = raw.trim().toUpperCase();
  const m = /^([A-Z]{2})-([A-Z0-9]{1,3})$/.exec(s);
  if (m) {
    if (!isAlpha2(m[1]!)) fail(`${JSON.stringify(raw)} is not an ISO 3166-2 subdivision of a known country (e.g. US-DE)`);
    return s;
  }
  return normaliseCountry(raw);
}

/** s.toUpperCase(), without a copy when s is ASCII with no a-z. */
function upperCase(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 97) return s.toUpperCase(); // a-z, or anything past ASCII: let the runtime decide
  }
  return s;
}

/** Registration numbers compare case- and space-insensitively: "hrb  12345" -> "HRB 12345". */
export function normaliseRegistrationNumber(raw: string): string {
  const s = upperCase(cleanText(raw));
  if (s.length === 0) fail('must not be empty');
  if (s.length > 64) fail('must be at most 64 characters');
  return s;
}

/** ISO 17442 LEI: 18 alphanumerics + 2 check digits, ISO 7064 MOD 97-10. */
export function normaliseLei(raw: string): string {
  const plain = isPlainLei(raw);
  const s = plain ? raw : raw.replace(/\s+/g, '').toUpperCase();
  if (!plain && !/^[A-Z0-9]{18}[0-9]{2}$/.test(s)) fail(`${JSON.stringify(raw)} is not an LEI (20 characters: 18 letters or digits, then 2 check digits)`);
  if (mod97(s) !== 1) fail(`${JSON.stringify(raw)} has wrong LEI check digits`);
  return s;
}

/** 20 characters, 18 of 0-9 A-Z then 2 digits: what normaliseLei's regex accepts, unchanged. */
function isPlainLei(raw: string): boolean {
  if (raw.length !== 20) return false;
  for (let i = 0; i < 20; i++) {
    const c = raw.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (i < 18 && c >= 65 && c <= 90))) return false;
  }
  return true;
}

/** Remainder mod 97 of the number made by replacing A..Z with 10..35. */
export function mod97(s: string): number {
  let rem = 0;
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code >= 48 && code <= 57) rem = (rem * 10 + (code - 48)) % 97;
    else if (code >= 65 && code <= 90) rem = (rem * 100 + (code - 55)) % 97; // two digits, 10..35
    else return mod97Any(s);
  }
  return rem;
}

/** mod97 of any string, as it has always been computed (other characters by their code). */
function mod97Any(s: string): number {
  let rem = 0;
  for (const ch of s) {
    const code = ch.charCodeAt(0);
    const digits = code >= 65 ? String(code - 55) : ch;
    for (const d of digits) rem = (rem * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rem;
}

/** The two check digits that make an 18-character LEI prefix valid. */
export function leiCheckDigits(prefix18: string): string {
  const check = 98 - mod97(`${prefix18.toUpperCase()}00`);
  return String(check).padStart(2, '0');
}

/** Canonical exact decimal: no leading zeros, no trailing fractional zeros ("001200.50" -> "1200.5"). */
export function normaliseAmount(raw: string | number): string {
  let s: string;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) fail('must be a finite number');
    s = String(raw);
    if (/e/i.test(s) || s.replace(/[-.]/g, '').replace(/^0+/, '').length > 15) {
      fail('is too large or precise for a JSON number; give it as a string, e.g. "1250000.50"');
    }
  } else {
    const plain = plainAmount(raw);
    if (plain !== undefined) return plain;
    s = raw.trim().replace(/[_,](?=\d{3}\b)/g, '');
  }
  const m = /^(\d{1,18})(?:\.(\d{1,6}))?$/.exec(s);
  if (!m) fail(`${JSON.stringify(raw)} is not a non-negative decimal amount (e.g. 1250000.50)`);
  const int = m![1]!.replace(/^0+(?=\d)/, '');
  const frac = (m![2] ?? '').replace(/0+$/, '');
  return frac ? `${int}.${frac}` : int;
}

/**
 * normaliseAmount of a plain amount, by a character scan: 1-18 digits without a leading zero
 * (or just "0"), then optionally "." and 1-6 digits, whose trailing zeros go. Anything else
 * (spaces, separators, leading zeros, errors) gives undefined: the regexes decide.
 */
function plainAmount(raw: string): string | undefined {
  const len = raw.length;
  let i = 0;
  while (i < len && raw.charCodeAt(i) >= 48 && raw.charCodeAt(i) <= 57) i++;
  if (i === 0 || i > 18 || (i > 1 && raw.charCodeAt(0) === 48)) return undefined;
  if (i === len) return raw;
  const dot = i;
  if (raw.charCodeAt(dot) !== 46 || len - dot - 1 < 1 || len - dot - 1 > 6) return undefined;
  let end = dot; // the end of the result: past the last non-zero fraction digit
  for (i = dot + 1; i < len; i++) {
    const c = raw.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
    if (c !== 48) end = i + 1;
  }
  return end === len ? raw : raw.slice(0, end);
}

let currencies: Set<string> | undefined;
/** ISO 4217 alphabetic code, as the runtime's ICU data knows it. */
export function normaliseCurrency(raw: string): string {
  currencies ??= new Set(Intl.supportedValuesOf('currency'));
  const s = raw.trim().toUpperCase();
  if (!currencies.has(s)) fail(`${JSON.stringify(raw)} is not an ISO 4217 currency code`);
  return s;
}

/** today's YYYY-MM-DD for normaliseDate, kept for the last `today` seen (an import passes one). */
let todayTime = NaN;
let todayIso = '';

/** YYYY-MM-DD, a real calendar date, not in the future. */
export function normaliseDate(raw: string, today: Date): string {
  if (raw.length === 10 && isCalendarDate(raw)) {
    const t = today.getTime();
    if (t !== todayTime) {
      todayIso = today.toISOString().slice(0, 10); // throws for an invalid today, as below
      todayTime = t;
    }
    if (raw <= todayIso) return raw;
  }
  const s = raw.trim();
  if (!isCalendarDate(s)) fail(`${JSON.stringify(raw)} is not a date (YYYY-MM-DD)`);
  if (s > today.toISOString().slice(0, 10)) fail(`${s} is in the future`);
  return s;
}

/** Lower case, trimmed, de-duplicated and sorted, so tag sets compare equal. */
export function normaliseTags(raw: readonly string[]): string[] {
  const out = new Set<string>();
  for (const t of raw) {
    const s = t.trim().toLowerCase();
    if (s === '') continue;
    if (!/^[\p{L}\p{N}][\p{L}\p{N} ._:/-]{0,49}$/u.test(s)) fail(`${JSON.stringify(t)} is not a tag (letters, digits, space . _ : / -, at most 50)`);
    out.add(s);
  }
  return [...out].sort();
}

/** "source:id" -> { source, id }; source is a lower-case slug. */
export function parseExternalId(raw: string): { source: string; id: string } {
  const i = raw.indexOf(':');
  if (i <= 0 || i === raw.length - 1) fail(`${JSON.stringify(raw)} must look like source:id (e.g. crm:48213)`);
  return { source: raw.slice(0, i), id: raw.slice(i + 1) };
}

/** The longest external id (characters): a CRM permalink fits; 4 bytes a character stays under PostgreSQL's btree entry limit. */
export const EXTERNAL_ID_MAX = 512;

export function normaliseExternalIds(raw: readonly { source: string; id: string }[]): { source: string; id: string }[] {
  const seen = new Set<string>();
  const out: { source: string; id: string }[] = [];
  for (const e of raw) {
    const source = e.source.trim().toLowerCase();
    const id = e.id.trim();
    if (!/^[a-z0-9][a-z0-9._-]{0,31}$/.test(source)) fail(`source ${JSON.stringify(e.source)} must be a lower-case slug (a-z 0-9 . _ -)`);
    if (id.length === 0 || id.length > EXTERNAL_ID_MAX) fail(`id for ${source} must be 1 to ${EXTERNAL_ID_MAX} characters`);
    if (CONTROL_CHARS.test(id)) fail(`id for ${source} must not contain control characters`);
    if (seen.has(source)) fail(`two ids for source ${source}`);
    seen.add(source);
    out.push({ source, id });
  }
  return out.sort((a, b) => a.source.localeCompare(b.source));
}
