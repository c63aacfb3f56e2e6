import { describe, expect, it } from 'vitest';
import { parseCompanyRef } from '../../src/domain/company.js';
import { completeCompany, parseCompanyPatch, validateNewCompany } from '../../src/domain/validate.js';
import { ValidationError } from '../../src/errors.js';

const today = new Date('2026-11-25T12:00:00Z');
const issue = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    expect((e as ValidationError).code).toBe('COMPANYCTL_INVALID_INPUT');
    return e as ValidationError;
  }
  throw new Error('expected a ValidationError');
};

describe('validateNewCompany', () => {
  it('normalises every field', () => {
    const c = validateNewCompany(
      {
        name: '  Acme   GmbH ',
        domain: 'https://www.ACME.de/',
        country: 'de',
        registrationCountry: 'de',
        registrationNumber: 'hrb  123',
        revenueAmount: '100.50',
        revenueCurrency: 'eur',
        employees: '12',
        tags: 'b,a',
        externalIds: 'crm:1;erp:X-2',
      },
      today,
    );
    expect(c).toMatchObject({
      name: 'Acme GmbH',
      domain: 'acme.de',
      country: 'DE',
      registrationNumber: 'HRB 123',
      revenueAmount: '100.5',
      revenueCurrency: 'EUR',
      employees: 12,
      tags: ['a', 'b'],
      externalIds: [
        { source: 'crm', id: '1' },
        { source: 'erp', id: 'X-2' },
      ],
      status: 'active',
    });
  });

  it('names the field and the reason', () => {
    const e = issue(() => validateNewCompany({ name: 'A', country: 'XX' }, today));
    expect(e.field).toBe('country');
    expect(e.message).toBe('country: "XX" is not a country (an ISO 3166-1 code such as DE or DEU, or an English name)');
  });

  it('requires a name', () => expect(issue(() => validateNewCompany({ domain: 'a.com' }, today)).field).toBe('name'));
  it('rejects unknown fields by name', () => expect(issue(() => validateNewCompany({ name: 'A', colour: 'red' }, today)).field).toBe('colour'));
  it('rejects wrong types', () => expect(issue(() => validateNewCompany({ name: 'A', employees: true }, today)).field).toBe('employees'));
  it('needs a currency with an amount', () => expect(issue(() => validateNewCompany({ name: 'A', revenueAmount: '5' }, today)).field).toBe('revenueCurrency'));
  it('needs a country with a registration number', () =>
    expect(issue(() => validateNewCompany({ name: 'A', registrationNumber: '5' }, today)).field).toBe('registrationCountry'));
  it('refuses control characters (terminal escape sequences) in text', () => {
    expect(issue(() => validateNewCompany({ name: 'Evil\u001b]0;pwned\u0007 Ltd' }, today)).field).toBe('name');
  });
  it('reports every issue it found', () => {
    const e = issue(() => validateNewCompany({ name: 'A', country: 'XX', lei: 'nope' }, today));
    expect(e.issues.map((i) => i.field).sort()).toEqual(['country', 'lei']);
  });
});

describe('patches', () => {
  it('null and empty strings clear fields; list fields go back to []', () => {
    const base = validateNewCompany({ name: 'A', domain: 'a.com', tags: ['x'] }, today);
    const next = completeCompany(parseCompanyPatch({ domain: '', tags: null }, today), base);
    expect(next.domain).toBeNull();
    expect(next.tags).toEqual([]);
    expect(next.name).toBe('A');
  });
  it('cannot clear the name', () => {
    const base = validateNewCompany({ name: 'A' }, today);
    expect(() => completeCompany(parseCompanyPatch({ name: '' }, today), base)).toThrow(ValidationError);
  });
});

describe('parseCompanyRef', () => {
  it.each([
    ['42', { kind: 'id', id: 42 }],
    ['https://www.Acme.de', { kind: 'domain', domain: 'acme.de' }],
    ['529900t8bm49aursdo55', { kind: 'lei', lei: '529900T8BM49AURSDO55' }],
    ['de:hrb  123', { kind: 'registration', country: 'DE', number: 'HRB 123' }],
    ['US-DE:5123987', { kind: 'registration', country: 'US-DE', number: '5123987' }],
  ])('%s', (ref, want) => expect(parseCompanyRef(ref)).toEqual(want));
  it.each(['0', 'acme', ''])('rejects %j', (ref) => expect(parseCompanyRef(ref)).toBeUndefined());
});
