// Broker test helpers: the machine's RabbitMQ (COMPANYCTL_TEST_AMQP_URL, default
// amqp://127.0.0.1:5672; .ci/run starts it), test-owned queues and exchanges with unique names
// deleted afterwards, and a TCP proxy the test owns to simulate losing the broker.
import { connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';
import amqp from 'amqplib';

export const AMQP_URL = process.env.COMPANYCTL_TEST_AMQP_URL ?? 'amqp://127.0.0.1:5672';

async function reachable(url: string): Promise<string | undefined> {
  try {
    const c = await amqp.connect(url, { timeout: 3000 });
    await c.close();
    return undefined;
  } catch (e) {
    return `no RabbitMQ at ${url} (${String((e as Error).message).split('\n')[0]}); .ci/run starts one`;
  }
}

/** Why the broker tests skip, or undefined when a broker answers. */
export const AMQP_SKIP_REASON = await reachable(AMQP_URL);

/** A unique name prefix for this test file's queues and exchanges. */
export const uniqueName = (what: string) => `companyctl-test.${what}.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;

/** An admin channel to the real broker, and clean-up of what a test declared. */
export async function brokerAdmin() {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createConfirmChannel();
  // Errors also reject the call that caused them; unheard 'error' events would crash the run.
  conn.on('error', () => undefined);
  ch.on('error', () => undefined);
  const queues = new Set<string>();
  const exchanges = new Set<string>();
  return {
    ch,
    own(kind: 'queue' | 'exchange', name: string) {
      (kind === 'queue' ? queues : exchanges).add(name);
      return name;
    },
    async send(queue: string, body: unknown, props: Record<string, unknown> = {}) {
      const content = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      ch.sendToQueue(queue, content, { contentType: 'application/json', persistent: true, ...props });
      await ch.waitForConfirms();
    },
    async sendMany(queue: string, items: { body: unknown; messageId: string }[]) {
      for (const it of items) ch.sendToQueue(queue, Buffer.from(JSON.stringify(it.body)), { contentType: 'application/json', persistent: true, messageId: it.messageId });
      await ch.waitForConfirms();
    },
    /** Every message now in a queue (acked: taken out). */
    async drainQueue(queue: string) {
      const out: amqp.GetMessage[] = [];
      for (;;) {
        const m = await ch.get(queue, { noAck: true });
        if (!m) return out;
        out.push(m);
      }
    },
    /** Declare a queue exactly as the consumer does (so messages can be sent before it starts). */
    async declareLikeConsumer(queue: string, deadLetterExchange: string) {
      await ch.assertExchange(deadLetterExchange, 'direct', { durable: true });
      await ch.assertQueue(`${queue}.dead`, { durable: true });
      await ch.bindQueue(`${queue}.dead`, deadLetterExchange, queue);
      await ch.assertQueue(queue, { durable: true, arguments: { 'x-dead-letter-exchange': deadLetterExchange, 'x-dead-letter-routing-key': queue } });
    },
    async count(queue: string) {
      return (await ch.checkQueue(queue)).messageCount;
    },
    async cleanup() {
      // A fresh channel: a test may have had the broker close this one.
      const clean = await conn.createChannel();
      clean.on('error', () => undefined);
      for (const q of queues) await clean.deleteQueue(q).catch(() => undefined);
      for (const e of exchanges) await clean.deleteExchange(e).catch(() => undefined);
      await conn.close().catch(() => undefined);
    },
  };
}

/** A TCP proxy to the broker: `cut()` drops every connection, `refuse()` / `accept()` stop and start listening. */
export async function brokerProxy() {
  const target = new URL(AMQP_URL);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = tcpConnect(Number(target.port || 5672), target.hostname);
        sockets.add(client).add(upstream);
        const drop = () => (client.destroy(), upstream.destroy(), sockets.delete(client), sockets.delete(upstream));
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as { port: number }).port;
        resolve();
      });
    });
  await listen();
  return {
    get url() {
      return `amqp://127.0.0.1:${port}`;
    },
    connections: () => sockets.size / 2,
    cut() {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    async refuse() {
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server = undefined;
    },
    accept: listen,
    async close() {
      this.cut();
      await this.refuse();
    },
  };
}

/** Poll until `check` is true (wide margins: the machine is shared). */
export async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
