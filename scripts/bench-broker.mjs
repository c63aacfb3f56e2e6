// Broker benchmark against the local RabbitMQ (COMPANYCTL_TEST_AMQP_URL, default
// amqp://127.0.0.1:5672), each figure a ratio to a bare amqplib loop in the same run:
// - consume: N upsert messages (default 50,000) applied by runConsumer (validation, batched
//   transactions through the company write path, outbox events, applied ids, acks after
//   commit) on a fresh SQLite store, vs a bare amqplib consume-and-ack loop over the same
//   messages with the same prefetch. Target >= 0.25x.
// - publish: N outbox events delivered by the dispatcher's "broker" handler (claims, publish
//   with confirms, outcomes recorded), vs a bare amqplib publish-with-confirms loop of the same
//   bodies. Target >= 0.5x.
// Best of R runs each (default 3), with the node process's CPU seconds. Test-owned queues and
// exchanges with unique names, deleted afterwards.
//   npm run bench:broker -- [--messages N] [--runs R] [--json]
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import { loadWorkload } from './bench-lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const URL_ = process.env.COMPANYCTL_TEST_AMQP_URL ?? 'amqp://127.0.0.1:5672';
const TARGETS = { consume: 0.25, publish: 0.5 };

function options() {
  const { values } = parseArgs({ options: { messages: { type: 'string' }, runs: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const int = (name, raw, min) => {
    const n = Number(String(raw).replace(/[_,]/g, ''));
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
  return { messages: int('messages', values.messages ?? 50_000, 1), runs: int('runs', values.runs ?? 3, 1), json: values.json };
}

const WORKLOAD = `
import { join } from 'node:path';
import { resolveStoreLocation } from './src/infra/db/location.js';
import { migrateStore, openStore } from './src/infra/db/store.js';
import { FileCache } from './src/infra/cache.js';
import { runConsumer } from './src/services/broker-consume.js';
import { parseBrokerConfig } from './src/services/broker-config.js';
import { brokerEventHandler } from './src/services/broker-publish.js';
import { dispatchDue } from './src/services/dispatch.js';
import { eventsSettings } from './src/services/events-settings.js';
import { insertOutboxEvent } from './src/infra/db/company-write.js';
import { deliveryCounts } from './src/infra/db/events-store.js';

async function openFresh(dir) {
  const loc = resolveStoreLocation(undefined, join(dir, 'store.db'));
  await migrateStore(loc);
  return { loc, store: await openStore(loc) };
}

export async function consume(dir, url, queue, n, deadLetterExchange) {
  const { loc, store } = await openFresh(dir);
  try {
    const config = parseBrokerConfig({ url, consume: { deadLetterExchange } }, 'bench');
    const cache = new FileCache(join(dir, 'cache'), loc.key);
    const deps = {
      company: { store: async () => store, cache, cacheTtlSeconds: 0, now: () => new Date(), actor: 'amqp:' + queue },
      config,
      endpoint: async () => ({ url: config.url, heartbeatSeconds: 30, connectTimeoutMs: 10000 }),
      log: () => {},
      notice: () => {},
    };
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await runConsumer(deps, { queue, signal: new AbortController().signal, maxMessages: n });
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const rows = await store.read.all('select count(*) as n from company');
    const events = await store.read.all('select count(*) as n from outbox_event');
    return { ms, cpuS: (cpu.user + cpu.system) / 1e6, report: r, companies: Number(rows[0].n), events: Number(events[0].n), prefetch: config.consume.prefetch };
  } finally {
    await store.close();
  }
}

export async function publish(dir, url, exchange, n) {
  const { store } = await openFresh(dir);
  try {
    const now = new Date().toISOString();
    for (let i = 0; i < n; i += 1000) {
      await store.transaction(async (tx) => {
        for (let j = i; j < Math.min(n, i + 1000); j++) await insertOutboxEvent(tx, { type: 'company.updated', companyId: j + 1, actor: 'bench', payload: payloadFor(j), createdAt: now });
      });
    }
    const config = parseBrokerConfig({ url, exchange }, 'bench');
    const handler = brokerEventHandler({ config, endpoint: async () => ({ url: config.url, heartbeatSeconds: 30, connectTimeoutMs: 10000 }) });
    const settings = eventsSettings({}).dispatch;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await dispatchDue({ store: async () => store, now: () => new Date(), handlers: [handler], settings });
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    await handler.close();
    const counts = await deliveryCounts(store.read);
    return { ms, cpuS: (cpu.user + cpu.system) / 1e6, delivered: r.delivered, counts };
  } finally {
    await store.close();
  }
}

export function payloadFor(i) {
  const c = { id: i + 1, name: 'Company ' + i, legalName: null, domain: 'company-' + i + '.example', website: null, registrationNumber: null, registrationCountry: null, lei: null,
    industry: 'Software', employees: i % 5000, revenueAmount: null, revenueCurrency: null, addressLine1: null, addressLine2: null, city: 'Berlin', region: null, postcode: null,
    country: 'DE', status: 'active', incorporationDate: null, tags: ['supplier'], externalIds: [], version: 2, createdAt: '2026-12-01T00:00:00.000Z', updatedAt: '2026-12-01T00:00:00.000Z', deletedAt: null };
  return { before: { ...c, version: 1, employees: null }, after: c };
}
`;

const COUNTRIES = ['DE', 'FR', 'GB', 'US', 'NL', 'AT', 'CH', 'IT', 'ES', 'SE'];
const message = (i) =>
  Buffer.from(JSON.stringify({ op: 'upsert', key: 'domain', company: { name: `Company ${i}`, domain: `company-${i}.example`, country: COUNTRIES[i % 10], industry: 'Software', employees: i % 5000, tags: ['supplier'] } }));

/** Fill a queue with the n upsert messages (confirmed; not timed). */
async function fill(conn, queue, n) {
  const ch = await conn.createConfirmChannel();
  for (let i = 0; i < n; i++) {
    if (!ch.sendToQueue(queue, message(i), { messageId: `bench-${i}`, contentType: 'application/json', persistent: true })) await new Promise((r) => ch.once('drain', r));
    if (i % 5000 === 4999) await ch.waitForConfirms();
  }
  await ch.waitForConfirms();
  await ch.close();
}

/** The reference: consume and ack each message, same prefetch, until n are acked. */
async function bareConsume(queue, n, prefetch) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const conn = await amqp.connect(URL_);
  const ch = await conn.createChannel();
  await ch.prefetch(prefetch);
  let got = 0;
  await new Promise((resolve) => {
    void ch.consume(queue, (msg) => {
      ch.ack(msg);
      if (++got === n) resolve();
    });
  });
  await conn.close();
  const cpu = process.cpuUsage(cpu0);
  return { ms: performance.now() - t0, cpuS: (cpu.user + cpu.system) / 1e6 };
}

/** The reference: publish n bodies with confirms to an exchange, wait for every confirm. */
async function barePublish(exchange, n, payloadFor) {
  const bodies = Array.from({ length: n }, (_, i) => Buffer.from(JSON.stringify({ id: i + 1, type: 'company.updated', createdAt: new Date().toISOString(), actor: 'bench', companyId: i + 1, data: payloadFor(i) })));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const conn = await amqp.connect(URL_);
  const ch = await conn.createConfirmChannel();
  for (let i = 0; i < n; i++) {
    if (!ch.publish(exchange, 'company.updated', bodies[i], { persistent: true, messageId: String(i + 1), contentType: 'application/json' })) await new Promise((r) => ch.once('drain', r));
  }
  await ch.waitForConfirms();
  await conn.close();
  const cpu = process.cpuUsage(cpu0);
  return { ms: performance.now() - t0, cpuS: (cpu.user + cpu.system) / 1e6 };
}

const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const best = (xs) => xs.reduce((a, b) => (b.ms < a.ms ? b : a));

async function main() {
  const opts = options();
  const n = opts.messages;
  const w = await loadWorkload(WORKLOAD, 'broker');
  const tmp = mkdtempSync(join(tmpdir(), 'companyctl-bench-broker-'));
  const say = (s) => opts.json || process.stderr.write(`${s}\n`);
  // No heartbeats on the bench's own admin connection: it idles while a workload runs.
  const conn = await amqp.connect(`${URL_}?heartbeat=0`);
  conn.on('error', (e) => say(`bench: admin connection: ${e.message}`));
  const admin = await conn.createChannel();
  const tag = `bench.${process.pid}.${Date.now().toString(36)}`;
  const dlx = `${tag}.dlx`;
  const created = { queues: [], exchanges: [dlx] };
  try {
    const ours = [];
    const bare = [];
    const pubOurs = [];
    const pubBare = [];
    for (let run = 0; run < opts.runs; run++) {
      // consume: a fresh queue each, filled with the same messages
      const qBare = `${tag}.bare.${run}`;
      const qOurs = `${tag}.ours.${run}`;
      for (const q of [qBare, qOurs]) {
        await admin.assertQueue(q, { durable: true, arguments: { 'x-dead-letter-exchange': dlx, 'x-dead-letter-routing-key': q } });
        created.queues.push(q, `${q}.dead`);
        await fill(conn, q, n);
      }
      const b = await bareConsume(qBare, n, 1000);
      const dir = mkdtempSync(join(tmp, 'consume-'));
      const o = await w.consume(dir, URL_, qOurs, n, dlx);
      rmSync(dir, { recursive: true, force: true });
      if (o.companies !== n || o.events !== n) throw new Error(`consume run left work undone: ${o.companies} companies, ${o.events} events for ${n} messages`);
      bare.push(b);
      ours.push(o);
      say(`  consume run ${run + 1}: bare ${round(b.ms / 1000)} s, companyctl ${round(o.ms / 1000)} s (${round(o.cpuS)} CPU s) -> ${round(b.ms / o.ms, 3)}x`);

      // publish: an exchange each, bound to a queue so the broker stores what it confirms
      const ex = `${tag}.ex.${run}`;
      const qPub = `${tag}.pub.${run}`;
      await admin.assertExchange(ex, 'topic', { durable: true });
      created.exchanges.push(ex);
      await admin.assertQueue(qPub, { durable: true });
      created.queues.push(qPub);
      await admin.bindQueue(qPub, ex, '#');
      const pb = await barePublish(ex, n, w.payloadFor);
      await admin.purgeQueue(qPub);
      const pdir = mkdtempSync(join(tmp, 'publish-'));
      const po = await w.publish(pdir, URL_, ex, n);
      rmSync(pdir, { recursive: true, force: true });
      if (po.delivered !== n) throw new Error(`publish run delivered ${po.delivered} of ${n}: ${JSON.stringify(po.counts)}`);
      await admin.purgeQueue(qPub);
      pubBare.push(pb);
      pubOurs.push(po);
      say(`  publish run ${run + 1}: bare ${round(pb.ms / 1000)} s, companyctl ${round(po.ms / 1000)} s (${round(po.cpuS)} CPU s) -> ${round(pb.ms / po.ms, 3)}x`);
    }
    const c = { bare: best(bare), ours: best(ours) };
    const p = { bare: best(pubBare), ours: best(pubOurs) };
    const report = {
      node: process.version,
      cpus: availableParallelism(),
      messages: n,
      runs: opts.runs,
      consume: {
        bareMs: round(c.bare.ms, 0),
        bareCpuS: round(c.bare.cpuS),
        companyctlMs: round(c.ours.ms, 0),
        companyctlCpuS: round(c.ours.cpuS),
        messagesPerS: Math.round(n / (c.ours.ms / 1000)),
        ratio: round(c.bare.ms / c.ours.ms, 3),
        target: TARGETS.consume,
        pass: c.bare.ms / c.ours.ms >= TARGETS.consume,
      },
      publish: {
        bareMs: round(p.bare.ms, 0),
        bareCpuS: round(p.bare.cpuS),
        companyctlMs: round(p.ours.ms, 0),
        companyctlCpuS: round(p.ours.cpuS),
        eventsPerS: Math.round(n / (p.ours.ms / 1000)),
        ratio: round(p.bare.ms / p.ours.ms, 3),
        target: TARGETS.publish,
        pass: p.bare.ms / p.ours.ms >= TARGETS.publish,
      },
    };
    if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      const r = report;
      process.stdout.write(
        `consume ${n.toLocaleString('en-US')} upserts (best of ${r.runs}): bare amqplib ${round(r.consume.bareMs / 1000)} s, companyctl ${round(r.consume.companyctlMs / 1000)} s ` +
          `(${r.consume.messagesPerS.toLocaleString('en-US')} msg/s, ${r.consume.companyctlCpuS} CPU s): ${r.consume.ratio}x (target >= ${TARGETS.consume}: ${r.consume.pass ? 'pass' : 'MISSED'})\n` +
          `publish ${n.toLocaleString('en-US')} events with confirms (best of ${r.runs}): bare amqplib ${round(r.publish.bareMs / 1000)} s, companyctl ${round(r.publish.companyctlMs / 1000)} s ` +
          `(${r.publish.eventsPerS.toLocaleString('en-US')} events/s, ${r.publish.companyctlCpuS} CPU s): ${r.publish.ratio}x (target >= ${TARGETS.publish}: ${r.publish.pass ? 'pass' : 'MISSED'})\n`,
      );
    }
  } finally {
    for (const q of created.queues) await admin.deleteQueue(q).catch(() => undefined);
    for (const e of created.exchanges) await admin.deleteExchange(e).catch(() => undefined);
    await conn.close().catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench-broker: ${e.stack ?? e}\n`);
  process.exit(1);
});
