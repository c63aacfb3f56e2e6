// The import's compiled validator must agree with `company create`'s (validateNewCompany) on
// every row: the same normalised record, or the same issues in the same order.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateNewCompany } from '../../src/domain/validate.js';
import { ValidationError } from '../../src/errors.js';
import { compileRowValidator } from '../../src/services/import/validate.js';
import { ROOT } from '../helpers.js';

const today = new Date('2026-11-25T12:00:00Z');
const compiled = compileRowValidator(today);

function outcome(fn: () => unknown): unknown {
  try {
    return { ok: fn() };
  } catch (e) {
    if (e instanceof ValidationError) return { issues: e.issues };
    throw e;
  }
}

function expectSame(raw: Record<string, unknown>): void {
  const a = outcome(() => compiled(raw));
  const b = outcome(() => validateNewCompany(raw, today));
  expect(a, JSON.stringify(raw)).toEqual(b);
}

const fixture = (name: string) => readFileSync(join(ROOT, 'fixtures', name), 'utf8');

// Fields of the fixture CSVs as an importer sees them: strings, empty cells left out.
function csvObjects(text: string): Record<string, unknown>[] {
  const keys: Record<string, string> = {
    name: 'name', 'legal name': 'legalName', domain: 'domain', country: 'country', city: 'city', employees: 'employees',
    'revenue amount': 'revenueAmount', 'revenue currency': 'revenueCurrency', 'registration country': 'registrationCountry',
    'registration number': 'registrationNumber', lei: 'lei', tags: 'tags', 'external ids': 'externalIds', 'incorporation date': 'incorporationDate',
    address_line1: 'addressLine1',
  };
  const lines = text.trim().split('\n');
  const header = lines[0]!.split(',').map((h) => keys[h.toLowerCase()] ?? h);
  return lines.slice(1).map((l) => {
    const cells = l.match(/("([^"]|"")*"|[^,]*)(,|$)/g)!.map((c) => c.replace(/,$/, '').replace(/^"(.*)"$/s, '$1').replaceAll('""', '"'));
    const o: Record<string, unknown> = {};
    header.forEach((h, i) => {
      if (cells[i]) o[h] = cells[i];
    });
    return o;
  });
}

describe('compiled import validator = validateNewCompany', () => {
  it('agrees on every row of the import fixtures', () => {
    const rows = [
      ...csvObjects(fixture('import/companies.csv')),
      ...csvObjects(fixture('import/bad-rows.csv')),
      ...fixture('import/companies.ndjson').trim().split('\n').map((l) => JSON.parse(l)),
      ...(JSON.parse(fixture('companies.json')) as Record<string, unknown>[]),
    ];
    expect(rows.length).toBeGreaterThan(20);
    for (const r of rows) expectSame(r);
  });

  it('agrees on the edge cases of every field (valid, invalid, odd types, null)', () => {
    const cases: Record<string, unknown[]> = {
      name: ['  Acme   Robotics ', 'x'.repeat(301), '', '\u00a0Acme\u00a0', 'Tab\there', 42, null],
      legalName: ['', ' A  B ', 'y'.repeat(301)],
      domain: ['https://WWW.Example.com/about', 'bücher.de', 'not a domain', '', '  ', 5],
      website: ['example.com', 'ftp://example.com', 'https://user:pw@example.com', 'http://exa mple'],
      registrationCountry: ['de', 'US-DE', 'XX', 'D'],
      registrationNumber: ['hrb  12345', 'x'.repeat(65)],
      lei: ['529900T8BM49AURSDO55', '529900T8BM49AURSDO56', 'short'],
      industry: ['Robotics', 'z'.repeat(101)],
      employees: ['12', ' 7 ', '-1', '1.5', 'many', 12, 1e9, ''],
      revenueAmount: ['1,250,000.50', '001200.50', 'abc', 12.5, 1e30, ''],
      revenueCurrency: ['eur', 'XYZ'],
      country: ['de', 'XX', 'Deutschland'],
      status: ['Active', 'DORMANT', 'gone', ''],
      incorporationDate: ['2001-02-28', '2001-02-29', '2999-01-01', '01.02.2003'],
      tags: ['B;a,b', 'ok;#bad', ['x', 'Y'], [1, 2], ''],
      externalIds: ['crm:1;erp:2', 'crm:1;crm:2', 'nocolon', 'CRM:7', [{ source: 'crm', id: 3 }], ''],
    };
    for (const [field, values] of Object.entries(cases)) {
      for (const v of values) {
        expectSame({ name: 'Base', [field]: v });
        expectSame({ name: 'Base', revenueAmount: '1', revenueCurrency: 'EUR', [field]: v });
      }
    }
    // The cross-field rules of completeCompany.
    expectSame({ name: 'A', registrationNumber: 'HRB 1' });
    expectSame({ name: 'A', registrationCountry: 'DE' });
    expectSame({ name: 'A', revenueAmount: '5' });
    expectSame({ name: 'A', revenueCurrency: 'EUR' });
    expectSame({ domain: 'a.com' });
    expectSame({ name: 'x'.repeat(400), country: 'XX', employees: 'lots' });
  });

  it('remembers invalid values without changing their message (memoised normalisers)', () => {
    for (let i = 0; i < 3; i++) expectSame({ name: 'A', country: 'XX', incorporationDate: '2001-02-29' });
    for (let i = 0; i < 3; i++) expectSame({ name: 'A', revenueAmount: '1', revenueCurrency: 'XYZ', registrationCountry: 'XX', registrationNumber: '1', tags: 'ok;#bad' });
    for (let i = 0; i < 3; i++) expectSame({ name: 'A', country: '  ', revenueAmount: '1', revenueCurrency: ' ', tags: 'b;a' });
  });

  // The shortcuts of the compiled validator (character scans instead of regexes, a hand-made
  // date check, memos): each edge of each shortcut, both sides of it.
  it('agrees where its shortcuts end', () => {
    const cases: Record<string, unknown[]> = {
      // Text: the plain-text scan must send whitespace and control characters to cleanText.
      name: ['A\u0000B', 'X\u0085Y', '\u001f', 'a\u007fb', '\u3000Acme\u3000', 'Acme\u2028Co', 'Ac\u00a0me', 'Ac\u200bme', 'A\ufeffB', 'A\u180eB', 'Ac  me', ' Acme', 'Acme ', 'Ac me', 'ü', '😀'],
      city: ['Mün\u0000chen', '\t', '\u0085', 'São Paulo'],
      postcode: ['12345', '1'.repeat(20), '1'.repeat(21), ' 1'.repeat(11)],
      // Domains: canonical ones skip normaliseDomain; everything near the rule goes through it.
      domain: [
        'a.de', 'example.com', 'www.example.com', 'wwwexample.com', 'a--b.de', 'xn--bcher-kva.de', 'a.xn--p1ai', '-a.de', 'a-.de',
        'a..de', '.a.de', 'a.de.', 'A.de', 'a.d', 'a.c0m', 'a.b-c', '1.2.3.4', `${'a'.repeat(63)}.de`, `${'a'.repeat(64)}.de`,
        `a.${'x'.repeat(63)}`, `a.${'x'.repeat(64)}`, `${'a'.repeat(60)}.`.repeat(4) + 'de', `${'a'.repeat(62)}.`.repeat(4) + 'de', 'a_b.de', 'ex ample.com',
      ],
      employees: ['0', '00', '007', '100000000', '100000001', '999999999', '1234567890', '０', '1 ', '\u00a07', '+1'],
      revenueAmount: ['5.000', '0.0', '0', '00', '0.5', '1.', '.5', '1.1234560', '1.1234567', '123456789012345678', '1234567890123456789', '12345678901234567.10', '1_000', '1,000.00', ' 1'],
      lei: ['529900t8bm49aursdo55', ' 529900T8BM49AURSDO55', '529900T8BM49AURSDO5', '529900T8BM49AURSDO555', '529900T8BM49AURSDOX5', '5299-0T8BM49AURSDO55'],
      registrationNumber: ['hrb 1', 'HRB\u00a01', 'HRB  1', 'ß1', 'hrb\u00001', '[1]_^`'],
      incorporationDate: [
        '2026-11-25', '2026-11-26', '0099-01-01', '0999-12-31', '1000-01-01', '2000-02-29', '1900-02-29', '2004-02-29', '2001-13-01',
        '2001-00-10', '2001-01-00', '2001-04-31', '2001-12-31', ' 2001-01-01', '2001-1-01', '2001/01/01', '20010101', '9999-12-31',
      ],
      status: ['active', 'dormant', 'dissolved', ' active', 'ACTIVE', 'activ'],
      country: ['de', ' DE', 'D E', 'DE-BY'],
      registrationCountry: ['US-DE', 'us-de', 'DE-', 'DE-1234'],
      revenueCurrency: ['usd', ' GBP', 'EURO'],
      tags: [';', ',,', 'eu;eu', 'a'.repeat(50), 'a'.repeat(51), 'Ünïcode;tag'],
    };
    for (const [field, values] of Object.entries(cases)) {
      for (const v of values) {
        expectSame({ name: 'Base', [field]: v });
        expectSame({ name: 'Base', revenueAmount: '1', revenueCurrency: 'EUR', registrationCountry: 'DE', registrationNumber: '1', [field]: v });
      }
    }
  });

  it('gives each row its own tags array', () => {
    const a = compiled({ name: 'A', tags: 'x;y' });
    a.tags.push('z');
    expect(compiled({ name: 'B', tags: 'x;y' }).tags).toEqual(['x', 'y']);
    const b = compiled({ name: 'C' });
    b.tags.push('z');
    b.externalIds.push({ source: 's', id: '1' });
    expect(compiled({ name: 'D' })).toMatchObject({ tags: [], externalIds: [] });
  });
});
