// Inbound broker messages: the schema, and validation exactly as `company create` validates.
import { describe, expect, it } from 'vitest';
import { validateNewCompany } from '../../src/domain/validate.js';
import { InvalidMessage, parseInboundMessage } from '../../src/services/broker-message.js';
import { compileRowValidator } from '../../src/services/import/validate.js';
import { checkBrokerUrl, parseBrokerConfig, resolveBrokerPassword } from '../../src/services/broker-config.js';

const today = new Date('2026-12-01T00:00:00Z');
const validate = compileRowValidator(today);
const parse = (body: unknown, props: Record<string, unknown> = { messageId: 'm-1' }) =>
  parseInboundMessage(Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), props, validate);
const refusal = (body: unknown, props?: Record<string, unknown>) => {
  try {
    parse(body, props);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidMessage);
    return { code: (e as InvalidMessage).code, field: (e as InvalidMessage).field };
  }
  throw new Error('accepted');
};

describe('inbound broker messages', () => {
  it('an upsert is the company create record, and its patch holds only the fields sent', () => {
    const company = { name: ' Acme  GmbH ', domain: 'https://www.Acme.de/', country: 'de', employees: '12' };
    const m = parse({ op: 'upsert', key: 'domain', company });
    expect(m).toMatchObject({ messageId: 'm-1', op: 'upsert', key: { kind: 'domain', domain: 'acme.de' } });
    expect(m.input).toEqual(validateNewCompany(company, today));
    expect(Object.keys(m.patch!).sort()).toEqual(['country', 'domain', 'employees', 'name']);
  });

  it('keys: lei, registration and external:<source>', () => {
    expect(parse({ op: 'upsert', key: 'lei', company: { name: 'A', lei: '529900T8BM49AURSDO55' } }).key).toEqual({ kind: 'lei', lei: '529900T8BM49AURSDO55' });
    expect(parse({ op: 'upsert', key: 'registration', company: { name: 'A', registrationCountry: 'de', registrationNumber: 'hrb 1' } }).key).toMatchObject({ kind: 'registration', country: 'DE' });
    expect(parse({ op: 'upsert', key: 'external:crm', company: { name: 'A', externalIds: [{ source: 'crm', id: 42 }] } }).key).toEqual({ kind: 'external', source: 'crm', id: '42' });
    expect(parse({ op: 'delete', key: 'domain', company: { domain: 'acme.de' } })).toEqual({ messageId: 'm-1', op: 'delete', key: { kind: 'domain', domain: 'acme.de' } });
  });

  it('refuses what company create refuses, naming the field', () => {
    expect(refusal({ op: 'upsert', key: 'domain', company: { domain: 'acme.de' } })).toEqual({ code: 'COMPANYCTL_INVALID_INPUT', field: 'company.name' });
    expect(refusal({ op: 'upsert', key: 'domain', company: { name: 'A', domain: 'acme.de', employees: -1 } }).field).toBe('company.employees');
    expect(refusal({ op: 'upsert', key: 'domain', company: { name: 'A', domain: 'acme.de', colour: 'red' } }).field).toMatch(/colour/);
    expect(() => validateNewCompany({ domain: 'acme.de' }, today)).toThrow();
  });

  it('refuses malformed messages: no message id, not JSON, wrong shape, key missing', () => {
    expect(refusal({ op: 'upsert', key: 'domain', company: { name: 'A', domain: 'a.de' } }, {})).toEqual({ code: 'COMPANYCTL_MISSING_FIELD', field: 'message-id' });
    expect(refusal('{"op":', { messageId: 'x' }).field).toBe('body');
    expect(refusal([1], { messageId: 'x' }).field).toBe('body');
    expect(refusal({ op: 'merge', key: 'domain', company: {} }).field).toBe('op');
    expect(refusal({ op: 'upsert', key: 'name', company: { name: 'A' } }).field).toBe('key');
    expect(refusal({ op: 'upsert', key: 'domain', company: { name: 'A' }, extra: 1 }).field).toBe('extra');
    expect(refusal({ op: 'upsert', key: 'domain', company: { name: 'A' } })).toEqual({ code: 'COMPANYCTL_MISSING_FIELD', field: 'company.domain' });
    expect(refusal({ op: 'upsert', key: 'external:crm', company: { name: 'A' } }).code).toBe('COMPANYCTL_MISSING_FIELD');
    expect(refusal({ op: 'upsert', key: 'domain', company: { name: 'A', domain: 'a.de' } }, { messageId: 'x', contentType: 'text/plain' }).field).toBe('content-type');
  });
});

describe('broker config', () => {
  it('defaults: a durable topic exchange companyctl.events, publishing, bounded prefetch', () => {
    const c = parseBrokerConfig({ url: 'amqp://app@rabbit.example:5672/prod/' }, 'config.json')!;
    expect(c).toMatchObject({ url: 'amqp://app@rabbit.example:5672/prod', exchange: 'companyctl.events', exchangeType: 'topic', publish: true, passwordEnv: 'COMPANYCTL_BROKER_PASSWORD', keychain: true });
    expect(c.consume.prefetch).toBeGreaterThanOrEqual(c.consume.batchSize);
    expect(parseBrokerConfig(undefined, 'config.json')).toBeUndefined();
  });

  it('refuses a password in the URL, unknown settings and bad values, naming them', () => {
    const bad = (raw: Record<string, unknown>) => {
      try {
        parseBrokerConfig(raw, 'config.json');
      } catch (e) {
        return (e as { code: string; field?: string }).field;
      }
      throw new Error('accepted');
    };
    expect(bad({ url: 'amqp://app:secret@rabbit.example' })).toBe('broker.url');
    expect(bad({ url: 'http://rabbit.example' })).toBe('broker.url');
    expect(bad({ url: 'amqp://x', exchnage: 'a' })).toBe('broker.exchnage');
    expect(bad({ url: 'amqp://x', consume: { prefetch: 0 } })).toBe('broker.consume.prefetch');
    expect(bad({ url: 'amqp://x', exchange: 'amq.topic' })).toBe('broker.exchange');
    expect(() => checkBrokerUrl('amqp://u:p@h', (m) => new Error(m))).toThrow(/password/);
  });

  it('the password: the environment variable wins, then the keychain; none needed for the guest account', async () => {
    const c = parseBrokerConfig({ url: 'amqp://app@rabbit.example' }, 'f')!;
    const asked: string[] = [];
    const keychain = async (account: string) => (asked.push(account), 'from-keychain');
    expect(await resolveBrokerPassword(c, { COMPANYCTL_BROKER_PASSWORD: 'from-env' }, keychain)).toBe('from-env');
    expect(await resolveBrokerPassword(c, {}, keychain)).toBe('from-keychain');
    expect(asked).toEqual(['broker-password@amqp://app@rabbit.example']);
    await expect(resolveBrokerPassword(c, {}, async () => null)).rejects.toMatchObject({ code: 'COMPANYCTL_BROKER_NO_PASSWORD' });
    expect(await resolveBrokerPassword(parseBrokerConfig({ url: 'amqp://127.0.0.1' }, 'f')!, {}, async () => null)).toBeUndefined();
  });
});
