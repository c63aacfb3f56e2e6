// The `broker` section of the config file (RabbitMQ): checked in full when the broker is used,
// so every other command keeps a cheap config load. The URL never holds the password: that
// comes from an environment variable or the OS keychain, like the enrich API key.
import { CompanyctlError } from '../errors.js';

export const EXCHANGE_TYPES = ['topic', 'direct', 'fanout', 'headers'] as const;
export type ExchangeType = (typeof EXCHANGE_TYPES)[number];

export interface ConsumeSettings {
  /** Unacknowledged messages the broker hands this consumer at once. */
  prefetch: number;
  /** Messages applied in one store transaction (each acked after its commit). */
  batchSize: number;
  /** Where invalid messages go, with the reason in headers; routing key = the queue's name. */
  deadLetterExchange: string;
  /** Declare the queue (with its dead-letter exchange and `<queue>.dead` queue); false: the operator did. */
  declare: boolean;
  /** How long applied message ids are kept to drop redeliveries. */
  appliedRetentionHours: number;
  /** Backoff of requeues after store errors. */
  retryBackoffMs: number;
  retryMaxBackoffMs: number;
}

export interface BrokerConfig {
  /** amqp(s)://user@host:port/vhost, without the password. */
  url: string;
  /** Environment variable holding the password; wins over the keychain. */
  passwordEnv: string;
  /** Look in the OS keychain (stored by "companyctl broker set-password"). */
  keychain: boolean;
  exchange: string;
  exchangeType: ExchangeType;
  /** Publish every outbox event (the "broker" event handler). */
  publish: boolean;
  heartbeatSeconds: number;
  connectTimeoutMs: number;
  /** Longest wait for the broker's publisher confirms of one batch. */
  confirmTimeoutMs: number;
  /** Reconnect backoff of a consumer that lost the broker. */
  reconnectBackoffMs: number;
  reconnectMaxBackoffMs: number;
  consume: ConsumeSettings;
}

export const DEFAULT_PASSWORD_ENV = 'COMPANYCTL_BROKER_PASSWORD';

const TOP_KEYS = [
  'url',
  'passwordEnv',
  'keychain',
  'exchange',
  'exchangeType',
  'publish',
  'heartbeatSeconds',
  'connectTimeoutMs',
  'confirmTimeoutMs',
  'reconnectBackoffMs',
  'reconnectMaxBackoffMs',
  'consume',
];
const CONSUME_KEYS = ['prefetch', 'batchSize', 'deadLetterExchange', 'declare', 'appliedRetentionHours', 'retryBackoffMs', 'retryMaxBackoffMs'];

// AMQP short strings; "amq." names are the broker's own.
const NAME = /^[A-Za-z0-9_.:-]{1,255}$/;

export function checkBrokerName(name: string, field: string): string {
  if (!NAME.test(name) || name.startsWith('amq.')) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `${field}: ${JSON.stringify(name)} is not a usable queue or exchange name`, {
      field,
      hint: 'letters, digits and . _ : - only, 1 to 255 characters, not starting with "amq."',
    });
  }
  return name;
}

/** The broker section, or undefined when the config has none (nothing is published). */
export function parseBrokerConfig(raw: Record<string, unknown> | undefined, file: string): BrokerConfig | undefined {
  if (raw === undefined) return undefined;
  const bad = (path: string, message: string) => new CompanyctlError('COMPANYCTL_CONFIG_INVALID', `config file ${file}: broker.${path} ${message}`, { field: `broker.${path}` });
  const known = (obj: Record<string, unknown>, keys: string[], at: string) => {
    for (const k of Object.keys(obj)) if (!keys.includes(k)) throw bad(`${at}${k}`, `is not a known setting (known: ${keys.join(', ')})`);
  };
  const str = (v: unknown, path: string, def?: string): string => {
    if (v === undefined && def !== undefined) return def;
    if (typeof v !== 'string' || v.trim() === '') throw bad(path, 'must be a non-empty string');
    return v;
  };
  const bool = (v: unknown, path: string, def: boolean): boolean => {
    if (v === undefined) return def;
    if (typeof v !== 'boolean') throw bad(path, 'must be true or false');
    return v;
  };
  const int = (v: unknown, path: string, def: number, min: number, max: number): number => {
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(path, `must be a whole number from ${min} to ${max}`);
    return v;
  };
  const name = (v: unknown, path: string, def: string): string => {
    const s = str(v, path, def);
    try {
      return checkBrokerName(s, `broker.${path}`);
    } catch {
      throw bad(path, `${JSON.stringify(s)} is not a usable exchange name (letters, digits, . _ : -; not "amq.")`);
    }
  };

  known(raw, TOP_KEYS, '');
  const url = checkBrokerUrl(str(raw.url, 'url'), (m) => bad('url', m));
  const exchangeType = str(raw.exchangeType, 'exchangeType', 'topic');
  if (!(EXCHANGE_TYPES as readonly string[]).includes(exchangeType)) throw bad('exchangeType', `must be one of ${EXCHANGE_TYPES.join(', ')}`);
  const passwordEnv = str(raw.passwordEnv, 'passwordEnv', DEFAULT_PASSWORD_ENV);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(passwordEnv)) throw bad('passwordEnv', 'must be an environment variable name');

  let c: Record<string, unknown> = {};
  if (raw.consume !== undefined) {
    if (typeof raw.consume !== 'object' || raw.consume === null || Array.isArray(raw.consume)) throw bad('consume', 'must be a JSON object');
    c = raw.consume as Record<string, unknown>;
    known(c, CONSUME_KEYS, 'consume.');
  }
  const prefetch = int(c.prefetch, 'consume.prefetch', 1000, 1, 65_535);
  const consume: ConsumeSettings = {
    prefetch,
    batchSize: int(c.batchSize, 'consume.batchSize', Math.min(500, prefetch), 1, prefetch),
    deadLetterExchange: name(c.deadLetterExchange, 'consume.deadLetterExchange', 'companyctl.dead-letter'),
    declare: bool(c.declare, 'consume.declare', true),
    appliedRetentionHours: int(c.appliedRetentionHours, 'consume.appliedRetentionHours', 7 * 24, 1, 24 * 366),
    retryBackoffMs: int(c.retryBackoffMs, 'consume.retryBackoffMs', 1000, 1, 600_000),
    retryMaxBackoffMs: int(c.retryMaxBackoffMs, 'consume.retryMaxBackoffMs', 60_000, 1, 3_600_000),
  };
  return {
    url,
    passwordEnv,
    keychain: bool(raw.keychain, 'keychain', true),
    exchange: name(raw.exchange, 'exchange', 'companyctl.events'),
    exchangeType: exchangeType as ExchangeType,
    publish: bool(raw.publish, 'publish', true),
    heartbeatSeconds: int(raw.heartbeatSeconds, 'heartbeatSeconds', 30, 0, 3600),
    connectTimeoutMs: int(raw.connectTimeoutMs, 'connectTimeoutMs', 10_000, 100, 600_000),
    confirmTimeoutMs: int(raw.confirmTimeoutMs, 'confirmTimeoutMs', 30_000, 100, 600_000),
    reconnectBackoffMs: int(raw.reconnectBackoffMs, 'reconnectBackoffMs', 500, 1, 600_000),
    reconnectMaxBackoffMs: int(raw.reconnectMaxBackoffMs, 'reconnectMaxBackoffMs', 30_000, 1, 3_600_000),
    consume,
  };
}

/** amqp:// or amqps://, no password in it (trailing slashes dropped). */
export function checkBrokerUrl(raw: string, bad: (message: string) => Error): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad(`${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== 'amqp:' && url.protocol !== 'amqps:') throw bad('must be an amqp:// or amqps:// URL');
  if (url.password) throw bad(`must not hold the password: set ${DEFAULT_PASSWORD_ENV} or run "companyctl broker set-password"`);
  if (url.search || url.hash) throw bad('must not hold a query or fragment (use the broker settings instead)');
  return url.href.replace(/\/+$/, '');
}

/** The keychain account of the broker password: one per URL (user, host, port, vhost). */
export function passwordAccount(cfg: Pick<BrokerConfig, 'url'>): string {
  return `broker-password@${cfg.url}`;
}

/**
 * The password: the environment variable, then the OS keychain. A URL without a user name
 * uses RabbitMQ's guest account (local brokers only), so needs none.
 */
export async function resolveBrokerPassword(
  cfg: BrokerConfig,
  env: Record<string, string | undefined>,
  keychainGet: (account: string) => Promise<string | null>,
): Promise<string | undefined> {
  const fromEnv = env[cfg.passwordEnv];
  if (fromEnv) return fromEnv;
  if (!new URL(cfg.url).username) return undefined;
  if (cfg.keychain) {
    const fromKeychain = await keychainGet(passwordAccount(cfg));
    if (fromKeychain) return fromKeychain;
  }
  throw new CompanyctlError('COMPANYCTL_BROKER_NO_PASSWORD', `no password for the broker ${cfg.url}`, {
    hint: [`set ${cfg.passwordEnv}`, cfg.keychain && 'store it with "companyctl broker set-password --stdin"'].filter(Boolean).join(', or '),
  });
}

/** The endpoint to connect to, with its password looked up now. */
export async function brokerEndpoint(cfg: BrokerConfig, env: Record<string, string | undefined>): Promise<import('../infra/amqp.js').BrokerEndpoint> {
  const { keychain } = await import('../infra/credentials.js');
  const password = await resolveBrokerPassword(cfg, env, (account) => keychain.get({ account, file: '' }));
  return { url: cfg.url, password, heartbeatSeconds: cfg.heartbeatSeconds, connectTimeoutMs: cfg.connectTimeoutMs };
}
