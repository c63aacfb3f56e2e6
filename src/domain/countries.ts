// Countries as people write them: ISO 3166-1 alpha-2 ("GB"), alpha-3 ("GBR") or an English
// name ("United Kingdom", "South Korea"), resolved to alpha-2. The tables (i18n-iso-countries)
// load on first use: a read that never validates a country must not pay for them.
import { createRequire } from 'node:module';

interface CountryTable {
  isValid(code: string): boolean;
  alpha3ToAlpha2(code: string): string | undefined;
  registerLocale(data: unknown): void;
  getNames(lang: string, opts: { select: 'all' }): Record<string, string[]>;
}

let table: CountryTable | undefined;
const countries = (): CountryTable => (table ??= createRequire(import.meta.url)('i18n-iso-countries') as CountryTable);

/** Whether `code` is an assigned ISO 3166-1 alpha-2 code (upper case). */
export function isAlpha2(code: string): boolean {
  return code.length === 2 && countries().isValid(code);
}

/** The key a name is compared by: no accents, case, punctuation or "the"; spaces single. */
export function countryKey(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/&/g, ' and ')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .replace(/^the /, '')
    .trim();
}

interface NameIndex {
  /** name key -> the alpha-2 codes it names (two for an ambiguous name such as "Congo"). */
  byKey: Map<string, string[]>;
  /** alpha-2 -> the usual English name. */
  nameOf: Map<string, string>;
}

let names: NameIndex | undefined;
function nameIndex(): NameIndex {
  if (names) return names;
  const c = countries();
  c.registerLocale(createRequire(import.meta.url)('i18n-iso-countries/langs/en.json'));
  const byKey = new Map<string, string[]>();
  const nameOf = new Map<string, string>();
  for (const [code, list] of Object.entries(c.getNames('en', { select: 'all' }))) {
    // The second name is the everyday one when the first is official ("Russian Federation", "Russia").
    nameOf.set(code, list.length > 1 && list[1]!.length > 3 && !list[1]!.includes(',') ? list[1]! : list[0]!);
    for (const n of list) {
      const k = countryKey(n);
      const codes = byKey.get(k) ?? [];
      if (!codes.includes(code)) codes.push(code);
      byKey.set(k, codes);
    }
  }
  return (names = { byKey, nameOf });
}

export type CountryLookup = { code: string } | { problem: string };

const label = (idx: NameIndex, code: string) => `${idx.nameOf.get(code) ?? code} (${code})`;

/** alpha-2 for a code or English name, or the problem (with the closest candidates) as a sentence's end. */
export function lookupCountry(raw: string): CountryLookup {
  const s = raw.trim();
  const upper = s.toUpperCase();
  if (/^[A-Z]{2}$/.test(upper) && isAlpha2(upper)) return { code: upper };
  if (/^[A-Z]{3}$/.test(upper)) {
    const a2 = countries().alpha3ToAlpha2(upper);
    if (a2) return { code: a2 };
  }
  const idx = nameIndex();
  const key = countryKey(s);
  const codes = idx.byKey.get(key);
  if (codes?.length === 1) return { code: codes[0]! };
  if (codes && codes.length > 1) {
    return { problem: `${JSON.stringify(raw)} names more than one country: ${codes.map((c) => label(idx, c)).join(' or ')}; give the ISO code` };
  }
  const near = closest(idx, key);
  const hint = near.length ? `; closest: ${near.map((c) => label(idx, c)).join(', ')}` : '';
  return { problem: `${JSON.stringify(raw)} is not a country (an ISO 3166-1 code such as DE or DEU, or an English name)${hint}` };
}

/** Up to three countries whose names contain the key as a word, else those within a few edits. */
function closest(idx: NameIndex, key: string): string[] {
  if (key === '') return [];
  const scored = new Map<string, number>();
  for (const [k, codes] of idx.byKey) {
    let score: number;
    if (` ${k} `.includes(` ${key} `) || (key.length >= 4 && k.startsWith(key))) score = 0;
    else {
      const d = editDistance(key, k, 3);
      if (d > Math.min(3, Math.floor(key.length / 3))) continue;
      score = d;
    }
    for (const c of codes) if (!scored.has(c) || scored.get(c)! > score) scored.set(c, score);
  }
  return [...scored]
    .sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))
    .slice(0, 3)
    .map(([c]) => c);
}

/** Levenshtein distance, or max + 1 once it is certain to exceed max. */
function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      if (v < best) best = v;
    }
    if (best > max) return max + 1;
    prev = cur;
  }
  return prev[b.length]!;
}
