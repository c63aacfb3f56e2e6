// RabbitMQ connections through amqplib: one short-lived connection (the event publisher, whose
// retries are the dispatcher's), or a recovering one that reconnects with our backoff (the
// consumer). The password travels as SASL credentials, never inside a URL, so no amqplib
// message can carry it. Broker failures become typed errors naming the broker, not the secret.
import type { ChannelModel, RecoveringChannelModel } from 'amqplib';
import { CompanyctlError } from '../errors.js';
import { backoffDelay } from './http.js';

export interface BrokerEndpoint {
  /** amqp(s)://user@host:port/vhost, without the password. */
  url: string;
  password?: string;
  heartbeatSeconds: number;
  connectTimeoutMs: number;
}

const amqp = () => import('amqplib');

async function connectArgs(ep: BrokerEndpoint): Promise<[string, Record<string, unknown>]> {
  const { credentials } = await amqp();
  const u = new URL(ep.url);
  const user = decodeURIComponent(u.username);
  // Without a user name in the URL: RabbitMQ's local guest account.
  const creds = user ? credentials.plain(user, ep.password ?? '') : credentials.plain('guest', ep.password ?? 'guest');
  const query = `heartbeat=${ep.heartbeatSeconds}`;
  return [`${ep.url}?${query}`, { credentials: creds, timeout: ep.connectTimeoutMs, noDelay: true, clientProperties: { connection_name: 'companyctl' } }];
}

/** One connection, no recovery: a failure is the caller's to retry. */
export async function connectOnce(ep: BrokerEndpoint): Promise<ChannelModel> {
  const { connect } = await amqp();
  const [url, opts] = await connectArgs(ep);
  try {
    return await connect(url, opts);
  } catch (e) {
    throw brokerError(ep, e);
  }
}

export interface RecoveryHooks {
  /** After every (re)connect: open channels, declare, consume. A throw counts as a failed connect. */
  setup?: (model: ChannelModel) => Promise<void>;
  onDisconnect?: (err: Error) => void;
  onRetry?: (info: { attempt: number; delayMs: number; error: Error }) => void;
  backoffMs: number;
  maxBackoffMs: number;
  random?: () => number;
}

/**
 * A connection that reconnects for ever with exponential, jittered backoff (the project's
 * backoffDelay), running `setup` after each connect. Resolves at once; `waitForConnect()` waits.
 */
export async function connectRecovering(ep: BrokerEndpoint, hooks: RecoveryHooks): Promise<RecoveringChannelModel> {
  const { connect } = await amqp();
  const [url, opts] = await connectArgs(ep);
  const model = await connect(url, {
    ...opts,
    recovery: {
      waitForConnect: false,
      maxRetries: Infinity,
      calculateDelay: (attempt: number) => backoffDelay(attempt, { backoffMs: hooks.backoffMs, maxBackoffMs: hooks.maxBackoffMs }, hooks.random),
      setup: hooks.setup,
    },
  });
  model.on('disconnect', (err: Error) => hooks.onDisconnect?.(err));
  model.on('reconnect-scheduled', (info: { attempt: number; delay: number; error: Error }) => hooks.onRetry?.({ attempt: info.attempt, delayMs: info.delay, error: info.error }));
  // Connection errors also surface as 'disconnect'; an unheard 'error' event would crash Node.
  model.on('error', () => undefined);
  return model;
}

/** Whether an amqplib error is the broker refusing something (access, a mismatched declaration) rather than a lost connection. */
export function isRefusal(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === 403 || code === 404 || code === 405 || code === 406 || /ACCESS[-_]REFUSED|PRECONDITION[-_]FAILED|NOT[-_]FOUND|RESOURCE[-_]LOCKED/.test(String((e as Error)?.message));
}

/** One line from an amqplib error, without stack or frames. */
export function brokerReason(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}

export function brokerError(ep: Pick<BrokerEndpoint, 'url'>, e: unknown): CompanyctlError {
  if (e instanceof CompanyctlError) return e;
  const reason = brokerReason(e);
  if (isRefusal(e)) {
    return new CompanyctlError('COMPANYCTL_BROKER_REFUSED', `the broker ${ep.url} refused: ${reason}`, {
      hint: /ACCESS/.test(reason) ? 'check the user name in broker.url, the password and the vhost permissions' : 'check the broker settings in the config file',
      cause: e,
    });
  }
  return new CompanyctlError('COMPANYCTL_BROKER_UNAVAILABLE', `cannot reach the broker ${ep.url}: ${reason}`, {
    hint: 'check broker.url and that RabbitMQ runs',
    cause: e,
  });
}
