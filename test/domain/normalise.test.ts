import { describe, expect, it } from 'vitest';
import * as n from '../../src/domain/normalise.js';

const problem = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(n.FieldProblem);
    return (e as Error).message;
  }
  throw new Error('expected a FieldProblem');
};

describe('normaliseDomain', () => {
  it.each([
    ['example.com', 'example.com'],
    ['https://WWW.Example.com/about?x=1', 'example.com'],
    ['http://user@shop.example.co.uk:8080/', 'shop.example.co.uk'],
    ['Example.COM.', 'example.com'],
    ['bücher.de', 'xn--bcher-kva.de'],
  ])('%s -> %s', (raw, want) => expect(n.normaliseDomain(raw)).toBe(want));

  it.each(['localhost', 'not a domain', 'exa_mple.com', '-bad.com', 'example.123', ''])('rejects %j', (raw) => {
    expect(problem(() => n.normaliseDomain(raw))).toContain('is not a domain name');
  });
});

describe('normaliseLei', () => {
  it('accepts valid check digits and normalises case and spaces', () => {
    expect(n.normaliseLei('5299 00t8bm49aursdo55')).toBe('529900T8BM49AURSDO55');
    expect(n.normaliseLei('HWUPKR0MPOU8FGXBT394')).toBe('HWUPKR0MPOU8FGXBT394');
  });
  it('rejects wrong check digits', () => {
    expect(problem(() => n.normaliseLei('529900T8BM49AURSDO56'))).toContain('check digits');
  });
  it('rejects the wrong shape', () => {
    expect(problem(() => n.normaliseLei('ABC'))).toContain('is not an LEI');
  });
  it('keeps its remainder for characters other than 0-9 and A-Z', () => {
    expect(n.mod97('ab')).toBe(4243 % 97); // 'a' -> 42, 'b' -> 43, as it always was
    expect(n.mod97('A1')).toBe(101 % 97);
  });
  it('computes check digits that validate', () => {
    const prefix = '5299000DEMO0000042';
    expect(n.mod97(prefix + n.leiCheckDigits(prefix))).toBe(1);
  });
});

describe('countries', () => {
  it('accepts ISO 3166-1 alpha-2 in any case', () => expect(n.normaliseCountry('de')).toBe('DE'));
  it('rejects unknown codes, naming them', () => expect(problem(() => n.normaliseCountry('XX'))).toBe('"XX" is not a country (an ISO 3166-1 code such as DE or DEU, or an English name)'));
  it('allows subdivisions for registration', () => expect(n.normaliseRegistrationCountry('us-de')).toBe('US-DE'));
  it('rejects a subdivision of an unknown country', () => expect(() => n.normaliseRegistrationCountry('XX-DE')).toThrow(n.FieldProblem));
  it('rejects subdivisions for address countries', () => expect(() => n.normaliseCountry('US-DE')).toThrow(n.FieldProblem));
  it.each([
    ['China', 'CN'],
    ['United Kingdom', 'GB'],
    ['south korea', 'KR'],
    ['  SOUTH   KOREA ', 'KR'],
    ['Côte d’Ivoire', 'CI'],
    ['Cote d Ivoire', 'CI'],
    ['the Netherlands', 'NL'],
    ['USA', 'US'],
    ['DEU', 'DE'],
    ['gbr', 'GB'],
    ['Russia', 'RU'],
  ])('reads %j as %s (names and alpha-3 as people write them)', (raw, code) => expect(n.normaliseCountry(raw)).toBe(code));
  it('takes names and alpha-3 for registration too', () => {
    expect(n.normaliseRegistrationCountry('United Kingdom')).toBe('GB');
    expect(n.normaliseRegistrationCountry('USA')).toBe('US');
  });
  it('rejects an ambiguous name, naming both countries', () => {
    const m = problem(() => n.normaliseCountry('Congo'));
    expect(m).toContain('more than one country');
    expect(m).toContain('(CG)');
    expect(m).toContain('(CD)');
  });
  it('rejects an unknown name, naming the closest candidates', () => {
    expect(problem(() => n.normaliseCountry('Korea'))).toMatch(/not a country.*closest: .*\(KP\).*\(KR\)/);
    expect(problem(() => n.normaliseCountry('Germny'))).toMatch(/closest: Germany \(DE\)/);
    expect(problem(() => n.normaliseCountry('Atlantis'))).not.toContain('closest');
  });
});

describe('whitespace', () => {
  it('keeps U+FEFF inside a name (it is not documented whitespace)', () => expect(n.cleanText('a\ufeffb')).toBe('a\ufeffb'));
  it('keeps a leading U+FEFF too', () => expect(n.cleanText('\ufeffab')).toBe('\ufeffab'));
  it('collapses the documented whitespace', () => expect(n.cleanText(' a\u00a0\t b\u2003\r\nc ')).toBe('a b c'));
});

describe('external ids', () => {
  it(`takes ids of up to ${n.EXTERNAL_ID_MAX} characters`, () => {
    const long = 'https://crm.example.com/' + 'x'.repeat(n.EXTERNAL_ID_MAX - 24);
    expect(n.normaliseExternalIds([{ source: 'crm', id: long }])[0]!.id).toBe(long);
    expect(problem(() => n.normaliseExternalIds([{ source: 'crm', id: long + 'y' }]))).toBe(`id for crm must be 1 to ${n.EXTERNAL_ID_MAX} characters`);
  });
  it('keeps 255 as a floor', () => expect(n.EXTERNAL_ID_MAX).toBeGreaterThanOrEqual(255));
});

describe('amounts and currencies', () => {
  it.each([
    ['001200.50', '1200.5'],
    ['0', '0'],
    ['1,250,000.00', '1250000'],
    ['123456789012345678.123456', '123456789012345678.123456'],
    ['5.000', '5'],
    ['0.0', '0'],
    ['0.50', '0.5'],
    ['12.05', '12.05'],
  ])('%s -> %s (exact)', (raw, want) => expect(n.normaliseAmount(raw)).toBe(want));
  it('accepts JSON numbers that are exact', () => expect(n.normaliseAmount(1250000.5)).toBe('1250000.5'));
  it('refuses JSON numbers that lost precision', () => expect(() => n.normaliseAmount(12345678901234567)).toThrow(n.FieldProblem));
  it.each(['-5', '1e6', 'abc', '1.1234567'])('rejects %j', (raw) => expect(() => n.normaliseAmount(raw)).toThrow(n.FieldProblem));
  it('knows ISO 4217', () => {
    expect(n.normaliseCurrency('eur')).toBe('EUR');
    expect(problem(() => n.normaliseCurrency('EUX'))).toContain('ISO 4217');
  });
});

describe('dates, tags, external ids, websites', () => {
  const today = new Date('2026-11-25T12:00:00Z');
  it('accepts a real past date', () => expect(n.normaliseDate('2020-02-29', today)).toBe('2020-02-29'));
  it('accepts today and trims', () => {
    expect(n.normaliseDate('2026-11-25', today)).toBe('2026-11-25');
    expect(n.normaliseDate(' 2000-02-29 ', today)).toBe('2000-02-29');
  });
  it.each(['1900-02-29', '2001-04-31', '2001-13-01', '2001-00-01', '2001-01-00', '0099-01-01', '2001-1-01'])('rejects %j', (raw) =>
    expect(problem(() => n.normaliseDate(raw, today))).toContain('is not a date'),
  );
  it('judges the future by the today it is given', () => {
    expect(problem(() => n.normaliseDate('2026-11-26', today))).toContain('in the future');
    expect(n.normaliseDate('2026-11-26', new Date('2026-11-26T00:00:00Z'))).toBe('2026-11-26');
    expect(problem(() => n.normaliseDate('2026-11-26', today))).toContain('in the future');
  });
  it('rejects impossible and future dates', () => {
    expect(problem(() => n.normaliseDate('2021-02-29', today))).toContain('is not a date');
    expect(problem(() => n.normaliseDate('2027-01-01', today))).toContain('in the future');
  });
  it('sorts, lower-cases and de-duplicates tags', () => expect(n.normaliseTags(['B', 'a', ' b ', ''])).toEqual(['a', 'b']));
  it('parses external ids', () => expect(n.parseExternalId('crm:48:2')).toEqual({ source: 'crm', id: '48:2' }));
  it('rejects two ids for one source', () => expect(() => n.normaliseExternalIds([{ source: 'crm', id: '1' }, { source: 'CRM', id: '2' }])).toThrow(n.FieldProblem));
  it('adds https to a bare website and refuses other schemes', () => {
    expect(n.normaliseWebsite('example.com/about')).toBe('https://example.com/about');
    expect(() => n.normaliseWebsite('ftp://example.com')).toThrow(n.FieldProblem);
  });
});

describe('cleanText and isPlainText', () => {
  it.each([
    ['Acme', 'Acme'],
    ['  Acme   Robotics ', 'Acme Robotics'],
    ['Ac\u00a0me\u3000', 'Ac me'],
    ['a\tb\nc', 'a b c'],
    ['a\u0000b', 'a\u0000b'],
    ['', ''],
  ])('%j -> %j', (raw, want) => expect(n.cleanText(raw)).toBe(want));

  it('calls text plain only when cleanText keeps it and it has no control characters', () => {
    for (const s of ['Acme', 'Ac me', 'Müller & Söhne', '東京', 'a.b-c', 'a\ufeffb']) expect(n.isPlainText(s)).toBe(true);
    for (const s of ['', ' a', 'a ', 'a  b', 'a\tb', 'a\u0000b', 'a\u007fb', 'a\u0085b', 'a\u00a0b', 'a\u2028b']) expect(n.isPlainText(s)).toBe(false);
  });
});
