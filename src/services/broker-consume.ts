// The inbound half of the broker: consume company changes from a queue, validate each message
// as `company create` does, apply a batch of them through the normal write path in one
// transaction (company row + outbox event each, actor amqp:<queue>, applied message ids), and
// ack only after the commit. Invalid messages go to the dead-letter exchange with the reason
// in headers; store errors requeue with backoff; a lost broker is reconnected with backoff and
// what it redelivers is dropped by message id. On abort (SIGTERM): stop taking messages,
// finish and ack what is held, close, return.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChannelModel, ConfirmChannel, ConsumeMessage, RecoveringChannelModel } from 'amqplib';
import { CompanyctlError } from '../errors.js';
import { brokerError, brokerReason, connectRecovering, isRefusal, type BrokerEndpoint } from '../infra/amqp.js';
import { backoffDelay } from '../infra/http.js';
import { pruneApplied } from '../infra/db/broker-inbound.js';
import type { AppLogEntry } from '../infra/app-log.js';
import { applyBatch, type Applied } from './broker-apply.js';
import { checkBrokerName, type BrokerConfig, type ConsumeSettings } from './broker-config.js';
import { InvalidMessage, parseInboundMessage, type InboundMessage } from './broker-message.js';
import type { CompanyDeps } from './company.js';
import { compileRowValidator, type RowValidator } from './import/validate.js';

export interface ConsumerDeps {
  /** The write path; its actor should be amqp:<queue>. */
  company: CompanyDeps;
  config: BrokerConfig;
  endpoint: () => Promise<BrokerEndpoint>;
  /** After each commit: the events it raised (the caller delivers them). */
  onCommit?: (eventIds: number[]) => void;
  log: (entry: AppLogEntry) => void;
  notice: (message: string) => void;
  random?: () => number;
  /** Tests: runs after a batch committed and before its acks. */
  beforeAck?: () => void;
}

export interface ConsumeOptions {
  queue: string;
  signal: AbortSignal;
  /** Stop after this many messages were settled (the rest held is requeued). */
  maxMessages?: number;
  /** Stop once no message came for this long. */
  idleExitMs?: number;
}

export interface ConsumeReport {
  queue: string;
  received: number;
  created: number;
  updated: number;
  unchanged: number;
  deleted: number;
  /** Deletes of a company that does not exist (nothing to do). */
  missing: number;
  /** Redeliveries of messages already applied: acked, nothing changed. */
  duplicates: number;
  deadLettered: number;
  requeued: number;
  reconnects: number;
}

interface Held {
  msg: ConsumeMessage;
  /** The channel generation it came on: acks on a closed channel are impossible (the broker redelivers). */
  gen: number;
}

interface Live {
  channel: ConfirmChannel;
  tag: string;
  gen: number;
  model: ChannelModel;
}

const HOUR = 3_600_000;

export async function runConsumer(deps: ConsumerDeps, opts: ConsumeOptions): Promise<ConsumeReport> {
  const queue = checkBrokerName(opts.queue, 'queue');
  const cfg = deps.config;
  const c = cfg.consume;
  const report: ConsumeReport = { queue, received: 0, created: 0, updated: 0, unchanged: 0, deleted: 0, missing: 0, duplicates: 0, deadLettered: 0, requeued: 0, reconnects: 0 };
  const store = await deps.company.store();
  const endpoint = await deps.endpoint();
  let prunedAt = 0;
  const prune = async () => {
    prunedAt = Date.now();
    await pruneApplied(store, new Date(deps.company.now().getTime() - c.appliedRetentionHours * HOUR).toISOString());
  };
  await prune();

  const buffer: Held[] = [];
  let live: Live | undefined;
  let generation = 0;
  let stopping = false;
  let cancelled = false;
  let fatal: CompanyctlError | undefined;
  let lastMessageAt = Date.now();
  let settled = 0;
  let wake: () => void = () => undefined;
  const woken = () => new Promise<void>((resolve) => (wake = resolve));
  const prefetch = opts.maxMessages ? Math.min(c.prefetch, opts.maxMessages) : c.prefetch;

  const setup = async (model: ChannelModel) => {
    const ch = await model.createConfirmChannel();
    // Channel errors also close it (handled below) or reject the call that caused them.
    ch.on('error', () => undefined);
    try {
      await declareQueue(ch, queue, c);
      await ch.prefetch(prefetch);
    } catch (e) {
      if (isRefusal(e)) {
        // A declaration the broker refuses (other arguments, no permission) will not heal by retrying.
        fatal = brokerError(endpoint, e);
        fatal = new CompanyctlError(fatal.code, `${fatal.message} (queue ${queue})`, {
          hint: c.declare ? `the queue exists with other settings: set broker.consume.declare to false, or delete and let companyctl declare it` : 'declare the queue, or set broker.consume.declare to true',
          cause: e,
        });
        wake();
      }
      throw e;
    }
    const gen = ++generation;
    ch.on('close', () => {
      if (live?.gen === gen) live = undefined;
      // A channel closed under us (not by our shutdown): reconnect from scratch.
      if (!stopping) void model.close().catch(() => undefined);
    });
    const { consumerTag } = await ch.consume(
      queue,
      (msg) => {
        if (!msg) {
          // The broker cancelled us (queue deleted): reconnect, which declares it again.
          if (!stopping) void model.close().catch(() => undefined);
          return;
        }
        report.received++;
        lastMessageAt = Date.now();
        buffer.push({ msg, gen });
        wake();
      },
      { noAck: false },
    );
    live = { channel: ch, tag: consumerTag, gen, model };
    if (connectedOnce) deps.notice(`broker: connected again to ${endpoint.url}, consuming ${queue}`);
    connectedOnce = true;
  };
  let connectedOnce = false;

  const conn: RecoveringChannelModel = await connectRecovering(endpoint, {
    setup,
    backoffMs: cfg.reconnectBackoffMs,
    maxBackoffMs: cfg.reconnectMaxBackoffMs,
    random: deps.random,
    onDisconnect: (err) => {
      live = undefined;
      // What was held but not taken into a batch is the broker's again (it redelivers it).
      buffer.length = 0;
      report.reconnects++;
      deps.log({ level: 'warn', code: 'COMPANYCTL_BROKER_UNAVAILABLE', message: `broker connection lost: ${brokerReason(err)}` });
      deps.notice(`broker: lost the connection (${brokerReason(err)}); reconnecting`);
    },
    onRetry: ({ delayMs, error }) => {
      // A refused login (user, password, vhost) will not heal by retrying.
      if (!fatal && !connectedOnce && isRefusal(error)) {
        fatal = brokerError(endpoint, error);
        wake();
        return;
      }
      if (!fatal) deps.notice(`broker: cannot reach ${endpoint.url} (${brokerReason(error)}); retrying in ${(delayMs / 1000).toFixed(1)} s`);
    },
  });

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const l = live;
    if (l) await l.channel.cancel(l.tag).catch(() => undefined);
    cancelled = true;
    wake();
  };
  const onAbort = () => void stop();
  opts.signal.addEventListener('abort', onAbort);
  if (opts.signal.aborted) void stop();

  let validator: RowValidator | undefined;
  let validatorDay = '';
  let failures = 0;
  try {
    for (;;) {
      if (fatal) throw fatal;
      if (buffer.length === 0) {
        if (stopping && cancelled) break;
        const idle = opts.idleExitMs;
        if (idle !== undefined && !stopping && Date.now() - lastMessageAt >= idle) {
          await stop();
          continue;
        }
        const waited = woken();
        const timer = idle !== undefined ? setTimeout(() => wake(), Math.max(10, idle - (Date.now() - lastMessageAt))) : undefined;
        await waited;
        if (timer) clearTimeout(timer);
        continue;
      }
      // A socket read brings a few hundred messages: let the next reads in before taking a batch.
      // At least one turn of the event loop a batch, so heartbeats and timers run between them.
      for (let n = buffer.length, i = 0; i < 8; i++, n = buffer.length) {
        await new Promise((resolve) => setImmediate(resolve));
        if (buffer.length === n || n >= c.batchSize || stopping) break;
      }
      const room = opts.maxMessages ? opts.maxMessages - settled : Infinity;
      const batch = buffer.splice(0, Math.min(c.batchSize, room));
      if (batch.length === 0) {
        for (const h of buffer.splice(0)) settle(h, 'requeue');
        continue;
      }
      // Validation's "today" (incorporation dates in the future) follows the clock.
      const day = deps.company.now().toISOString().slice(0, 10);
      if (day !== validatorDay) (validator = compileRowValidator(deps.company.now())), (validatorDay = day);
      const ok = await handleBatch(batch, validator!);
      failures = ok ? 0 : failures + 1;
      if (!ok && !stopping) await sleep(backoffDelay(failures, { backoffMs: c.retryBackoffMs, maxBackoffMs: c.retryMaxBackoffMs }, deps.random), undefined, { signal: opts.signal }).catch(() => undefined);
      if (opts.maxMessages && settled >= opts.maxMessages && !stopping) {
        await stop();
        // Held beyond the limit: back to the queue, in order.
        for (const h of buffer.splice(0)) settle(h, 'requeue');
      }
      if (Date.now() - prunedAt > HOUR) await prune();
    }
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
    stopping = true;
    // Closing the channel first flushes its acks: a connection close can overtake them.
    await live?.channel.close().catch(() => undefined);
    await conn.close().catch(() => undefined);
  }
  return report;

  /** Validate, apply, dead-letter and settle one batch; false when the store failed (requeued). */
  async function handleBatch(batch: Held[], validate: RowValidator): Promise<boolean> {
    const valid: { held: Held; message: InboundMessage }[] = [];
    const dead: { held: Held; reason: InvalidMessage }[] = [];
    for (const held of batch) {
      try {
        valid.push({ held, message: parseInboundMessage(held.msg.content, held.msg.properties, validate) });
      } catch (e) {
        if (!(e instanceof InvalidMessage)) throw e;
        dead.push({ held, reason: e });
      }
    }
    let applied: Applied<Held> | undefined;
    let storeError: unknown;
    try {
      applied = await applyBatch({ company: deps.company, queue, onCommit: deps.onCommit }, valid.map((v) => ({ item: v.held, message: v.message })));
    } catch (e) {
      storeError = e;
    }
    if (applied) {
      deps.beforeAck?.();
      for (const k of ['created', 'updated', 'unchanged', 'deleted', 'missing', 'duplicates'] as const) report[k] += applied.counts[k];
      for (const f of applied.failed) dead.push({ held: f.item, reason: f.reason });
    }
    const rejected = await deadLetter(dead);
    if (applied) {
      settled += valid.length - applied.failed.length;
      // Every earlier delivery is settled: one ack covers the batch (a rejected one is settled already).
      const target = [...batch].reverse().find((h) => !rejected.has(h));
      if (target && batch.every((h) => h.gen === target.gen)) settle(target, 'ack', true);
      else for (const h of batch) if (!rejected.has(h)) settle(h, 'ack');
      return true;
    }
    for (const d of dead) if (!rejected.has(d.held)) settle(d.held, 'ack');
    const err = storeError as { code?: string; message?: string };
    deps.log({ level: 'warn', code: err?.code ?? 'COMPANYCTL_INTERNAL', message: `broker: ${valid.length} messages from ${queue} requeued after a store error: ${String(err?.message ?? storeError).split('\n')[0]}` });
    deps.notice(`broker: store error (${String(err?.message ?? storeError).split('\n')[0]}); ${valid.length} messages requeued`);
    for (const v of valid) settle(v.held, 'requeue');
    report.requeued += valid.length;
    return false;
  }

  /**
   * Publish refused messages to the dead-letter exchange with the reason and wait for the
   * confirms; returns those the broker did not take, rejected so that it dead-letters them itself.
   */
  async function deadLetter(dead: { held: Held; reason: InvalidMessage }[]): Promise<Set<Held>> {
    const l = live;
    const rejected = new Set<Held>();
    const sends: Promise<void>[] = [];
    for (const { held, reason } of dead) {
      deps.log({ level: 'warn', code: reason.code, message: `broker: message ${String(held.msg.properties.messageId ?? '(no id)')} from ${queue} dead-lettered: ${reason.message}` });
      if (!l || held.gen !== l.gen) continue;
      const p = held.msg.properties;
      const headers = deadLetterHeaders(p.headers, reason, queue, deps.company.now());
      sends.push(
        new Promise<void>((resolve) => {
          const done = (err: unknown) => {
            // Not confirmed: the broker dead-letters it itself (x-death, without our reason).
            if (err) rejected.add(held), settle(held, 'reject');
            resolve();
          };
          try {
            l.channel.publish(c.deadLetterExchange, queue, held.msg.content, { ...p, headers, persistent: true }, done);
          } catch (e) {
            done(e);
          }
        }),
      );
      report.deadLettered++;
      settled++;
    }
    await Promise.all(sends);
    return rejected;
  }

  function settle(held: Held, how: 'ack' | 'requeue' | 'reject', allUpTo = false): void {
    const l = live;
    if (!l || held.gen !== l.gen) return;
    try {
      if (how === 'ack') l.channel.ack(held.msg, allUpTo);
      else l.channel.nack(held.msg, false, how === 'requeue');
    } catch {
      // The channel closed meanwhile: the broker redelivers, and the applied id drops it.
    }
  }
}

/** The queue, its dead-letter exchange and `<queue>.dead` (declare), or only a check that the queue exists. */
async function declareQueue(ch: ConfirmChannel, queue: string, c: ConsumeSettings): Promise<void> {
  if (!c.declare) {
    await ch.checkQueue(queue);
    return;
  }
  const dlq = `${queue}.dead`;
  await ch.assertExchange(c.deadLetterExchange, 'direct', { durable: true });
  await ch.assertQueue(dlq, { durable: true });
  await ch.bindQueue(dlq, c.deadLetterExchange, queue);
  await ch.assertQueue(queue, { durable: true, arguments: { 'x-dead-letter-exchange': c.deadLetterExchange, 'x-dead-letter-routing-key': queue } });
}

/** A refused message's headers: its own, plus why it was refused (README: dead letters). */
function deadLetterHeaders(own: Record<string, unknown> | undefined, reason: InvalidMessage, queue: string, now: Date): Record<string, unknown> {
  return {
    ...(own ?? {}),
    'x-companyctl-error': reason.message.slice(0, 1000),
    'x-companyctl-error-code': reason.code,
    ...(reason.field ? { 'x-companyctl-error-field': reason.field } : {}),
    'x-companyctl-queue': queue,
    'x-companyctl-rejected-at': now.toISOString(),
  };
}
