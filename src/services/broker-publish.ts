// The "broker" event handler: every outbox event published to the configured exchange as a
// persistent JSON message (routing key = event type, message id = event id, the webhook body),
// on a confirm channel. An event counts as delivered only once the broker confirmed it; a
// nack, a lost connection or a confirm timeout fails it, and the dispatcher retries it with
// backoff and dead-letters it after the usual attempts, exactly like a webhook.
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import type { ClaimedDelivery } from '../infra/db/events-store.js';
import { brokerError, brokerReason, connectOnce, type BrokerEndpoint } from '../infra/amqp.js';
import type { BrokerConfig } from './broker-config.js';
import type { EventHandler } from './dispatch.js';
import { webhookBody } from './webhook.js';

export interface PublisherDeps {
  config: BrokerConfig;
  /** The endpoint with its password, resolved on first use (env or keychain). */
  endpoint: () => Promise<BrokerEndpoint>;
}

interface Open {
  model: ChannelModel;
  channel: ConfirmChannel;
  closed: boolean;
}

export interface BrokerHandler extends EventHandler {
  /** Close the connection (a long-running process at shutdown; short commands need not). */
  close(): Promise<void>;
}

/**
 * The handler keeps one connection between batches. Its socket is unreferenced while idle, so
 * a command that dispatched and returned exits without a close; heartbeats are off for the
 * same reason, and a connection found dead at the next batch is replaced.
 */
export function brokerEventHandler(deps: PublisherDeps): BrokerHandler {
  let open: Open | undefined;
  const cfg = deps.config;

  const connect = async (): Promise<Open> => {
    if (open && !open.closed) return open;
    const ep = { ...(await deps.endpoint()), heartbeatSeconds: 0 };
    const model = await connectOnce(ep);
    try {
      const channel = await model.createConfirmChannel();
      await channel.assertExchange(cfg.exchange, cfg.exchangeType, { durable: true });
      const o: Open = { model, channel, closed: false };
      const gone = () => {
        o.closed = true;
      };
      model.on('close', gone);
      model.on('error', gone);
      channel.on('close', gone);
      channel.on('error', gone);
      open = o;
      return o;
    } catch (e) {
      await model.close().catch(() => undefined);
      throw brokerError(ep, e);
    }
  };

  const socket = (o: Open | undefined) => (o?.model.connection as unknown as { stream?: { ref(): void; unref(): void } } | undefined)?.stream;

  return {
    name: 'broker',
    async handle(batch: ClaimedDelivery[]) {
      const o = await connect();
      socket(o)?.ref();
      try {
        return await publishBatch(o, cfg, batch);
      } catch (e) {
        // A connection that failed a batch is not trusted with the next.
        o.closed = true;
        await o.model.close().catch(() => undefined);
        throw e;
      } finally {
        socket(o)?.unref();
      }
    },
    async close() {
      const o = open;
      open = undefined;
      if (o && !o.closed) await o.model.close().catch(() => undefined);
    },
  };
}

async function publishBatch(o: Open, cfg: BrokerConfig, batch: ClaimedDelivery[]): Promise<{ failed: Map<number, string> }> {
  const failed = new Map<number, string>();
  const confirms: Promise<void>[] = [];
  for (const d of batch) {
    const e = d.event;
    const body = Buffer.from(webhookBody(e));
    const options = {
      persistent: true,
      messageId: String(e.id),
      contentType: 'application/json',
      type: e.type,
      timestamp: Math.floor(Date.parse(e.createdAt) / 1000),
      appId: 'companyctl',
    };
    let sent!: (err: unknown) => void;
    confirms.push(
      new Promise<void>((resolve) => {
        sent = (err) => {
          if (err) failed.set(e.id, `the broker did not confirm the message (${brokerReason(err)})`);
          resolve();
        };
      }),
    );
    // false: the channel's buffer is full; wait for it to drain before writing more.
    if (!o.channel.publish(cfg.exchange, e.type, body, options, sent)) await drained(o);
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), cfg.confirmTimeoutMs)));
  try {
    if ((await Promise.race([Promise.all(confirms), timeout])) === 'timeout') {
      throw new Error(`the broker confirmed none or some of ${batch.length} messages within ${cfg.confirmTimeoutMs} ms`);
    }
  } finally {
    clearTimeout(timer);
  }
  return { failed };
}

function drained(o: Open): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      o.channel.off('drain', done);
      o.channel.off('close', done);
      resolve();
    };
    o.channel.once('drain', done);
    o.channel.once('close', done);
  });
}

/** The handler for this config file's broker section, or undefined when it publishes nothing. */
export async function brokerHandlerFor(raw: Record<string, unknown> | undefined, file: string, env: Record<string, string | undefined>): Promise<BrokerHandler | undefined> {
  const { parseBrokerConfig, brokerEndpoint } = await import('./broker-config.js');
  const config = parseBrokerConfig(raw, file);
  if (!config?.publish) return undefined;
  return brokerEventHandler({ config, endpoint: () => brokerEndpoint(config, env) });
}
