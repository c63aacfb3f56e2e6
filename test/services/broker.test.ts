// Both directions against the real RabbitMQ, with test-owned queues and exchanges: events
// published with confirms (routing keys, message ids, bodies), failures retried and dead like
// a webhook's; inbound messages applied, dead-lettered with their reason, deduplicated by
// message id, and a broker lost mid-stream (a TCP proxy the test owns) losing nothing.
// SQLite always, PostgreSQL when COMPANYCTL_TEST_PG_URL is set.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { validateNewCompany } from '../../src/domain/validate.js';
import { resolveStoreLocation } from '../../src/infra/db/location.js';
import { migrateStore, openStore, type Store } from '../../src/infra/db/store.js';
import { deliveryCounts } from '../../src/infra/db/events-store.js';
import { parseBrokerConfig, type BrokerConfig } from '../../src/services/broker-config.js';
import { runConsumer, type ConsumeReport } from '../../src/services/broker-consume.js';
import { brokerEventHandler } from '../../src/services/broker-publish.js';
import * as company from '../../src/services/company.js';
import { dispatchDue, type DispatchSettings } from '../../src/services/dispatch.js';
import { retryEvents } from '../../src/services/events.js';
import { webhookBody } from '../../src/services/webhook.js';
import { freshPgDatabase, PG_SKIP_REASON, PG_URL, tempHome } from '../helpers.js';
import { AMQP_SKIP_REASON, brokerAdmin, brokerProxy, uniqueName, until } from '../broker-helpers.js';

const dialects = [
  { name: 'sqlite', enabled: true, reason: '' },
  { name: 'postgresql', enabled: !!PG_URL, reason: PG_SKIP_REASON },
] as const;

const settings: DispatchSettings = { maxAttempts: 2, backoffBaseMs: 1, backoffMaxMs: 1, leaseMs: 60_000, concurrency: 4, batchSize: 100 };

for (const dialect of dialects) {
  const skip = AMQP_SKIP_REASON ?? (dialect.enabled ? undefined : dialect.reason);
  describe.skipIf(!!skip)(`the broker on ${dialect.name}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let home: ReturnType<typeof tempHome>;
    let pgDb: Awaited<ReturnType<typeof freshPgDatabase>> | undefined;
    let store: Store;
    let admin: Awaited<ReturnType<typeof brokerAdmin>>;
    const now = () => new Date();

    beforeAll(async () => {
      home = tempHome();
      pgDb = dialect.name === 'postgresql' ? await freshPgDatabase() : undefined;
      const loc = resolveStoreLocation(pgDb?.url, join(home.home, 'store.db'));
      await migrateStore(loc);
      store = await openStore(loc);
      admin = await brokerAdmin();
    });
    afterAll(async () => {
      await admin?.cleanup();
      await store?.close();
      await pgDb?.cleanup();
      home?.cleanup();
    });
    beforeEach(async () => {
      await store.transaction(async (tx) => {
        for (const t of ['event_delivery', 'company_external_id', 'outbox_event', 'company', 'broker_applied_message']) {
          await tx.em.getConnection().execute(`delete from ${t}`, [], 'run', tx.em.getTransactionContext());
        }
      });
    });

    const cdeps = (actor = 'tester'): company.CompanyDeps => ({ store: async () => store, cacheTtlSeconds: 0, now, actor });
    const count = async (sql: string) => Number((await store.read.all<{ n: unknown }>(sql))[0]!.n);

    describe('publishing', () => {
      it('publishes every event with its type as routing key, its id as message id, the webhook body, persistent, once confirmed', async () => {
        const exchange = admin.own('exchange', uniqueName('events'));
        const queue = admin.own('queue', uniqueName('events-in'));
        const config = parseBrokerConfig({ url: 'amqp://127.0.0.1:5672', exchange }, 'test')!;
        config.url = process.env.COMPANYCTL_TEST_AMQP_URL ?? config.url;
        await admin.ch.assertExchange(exchange, 'topic', { durable: true });
        await admin.ch.assertQueue(queue, { durable: false });
        await admin.ch.bindQueue(queue, exchange, 'company.*');
        const handler = brokerEventHandler({ config, endpoint: async () => ({ url: config.url, heartbeatSeconds: 0, connectTimeoutMs: 5000 }) });

        const created = await company.createCompany(cdeps(), validateNewCompany({ name: 'Acme', domain: 'acme.de' }));
        const updated = await company.updateCompany(cdeps(), { kind: 'id', id: created.company.id }, { industry: 'Tools' });
        const r = await dispatchDue({ store: async () => store, now, handlers: [handler], settings });
        await handler.close();
        expect(r).toMatchObject({ delivered: 2, failed: 0, dead: 0 });

        const got = await admin.drainQueue(queue);
        expect(got.map((m) => [m.fields.routingKey, m.properties.messageId])).toEqual([
          ['company.created', String(created.eventId)],
          ['company.updated', String(updated.eventId)],
        ]);
        const events = await store.read.all<{ id: unknown; type: string; company_id: unknown; actor: string; payload: unknown; created_at: unknown }>(
          'select id, type, company_id, actor, payload, created_at from outbox_event order by id',
        );
        for (const [i, m] of got.entries()) {
          const e = events[i]!;
          const payload = typeof e.payload === 'string' ? JSON.parse(e.payload) : e.payload;
          const createdAt = e.created_at instanceof Date ? e.created_at.toISOString() : String(e.created_at);
          expect(JSON.parse(m.content.toString())).toEqual(JSON.parse(webhookBody({ id: Number(e.id), type: e.type, companyId: Number(e.company_id), actor: e.actor, payload, createdAt })));
          expect(m.properties).toMatchObject({ contentType: 'application/json', deliveryMode: 2, type: e.type });
        }
      });

      it('an unreachable broker fails the delivery, which goes dead after the attempts and comes back with events retry', async () => {
        const proxy = await brokerProxy();
        const url = proxy.url;
        await proxy.refuse();
        const exchange = admin.own('exchange', uniqueName('events'));
        const config = parseBrokerConfig({ url, exchange, connectTimeoutMs: 2000 }, 'test')!;
        const handler = brokerEventHandler({ config, endpoint: async () => ({ url, heartbeatSeconds: 0, connectTimeoutMs: 2000 }) });
        const created = await company.createCompany(cdeps(), validateNewCompany({ name: 'Acme', domain: 'acme.de' }));
        const deps = { store: async () => store, now, handlers: [handler], settings };
        expect(await dispatchDue(deps)).toMatchObject({ delivered: 0, failed: 1 });
        await new Promise((r) => setTimeout(r, 20));
        expect(await dispatchDue(deps)).toMatchObject({ delivered: 0, dead: 1 });
        expect(await deliveryCounts(store.read)).toMatchObject({ dead: 1 });

        await proxy.accept();
        const queue = admin.own('queue', uniqueName('events-in'));
        await admin.ch.assertExchange(exchange, 'topic', { durable: true });
        await admin.ch.assertQueue(queue, { durable: false });
        await admin.ch.bindQueue(queue, exchange, '#');
        const env = { store: async () => store, now } as unknown as Parameters<typeof retryEvents>[0];
        expect(await retryEvents(env, { eventId: created.eventId })).toBe(1);
        expect(await dispatchDue(deps)).toMatchObject({ delivered: 1, dead: 0 });
        await handler.close();
        await proxy.close();
        expect((await admin.drainQueue(queue)).map((m) => m.properties.messageId)).toEqual([String(created.eventId)]);
      });
    });

    describe('consuming', () => {
      const consumerConfig = (url: string, extra: Record<string, unknown> = {}): BrokerConfig =>
        parseBrokerConfig({ url, reconnectBackoffMs: 50, reconnectMaxBackoffMs: 400, consume: { deadLetterExchange: admin.own('exchange', uniqueName('dlx')), prefetch: 50, batchSize: 20, ...extra } }, 'test')!;
      const declared = (queue: string) => (admin.own('queue', queue), admin.own('queue', `${queue}.dead`), queue);
      const start = (config: BrokerConfig, queue: string, opts: { maxMessages?: number; idleExitMs?: number } = {}) => {
        const ac = new AbortController();
        const notices: string[] = [];
        const done: Promise<ConsumeReport> = runConsumer(
          { company: cdeps(`amqp:${queue}`), config, endpoint: async () => ({ url: config.url, heartbeatSeconds: 5, connectTimeoutMs: 5000 }), log: () => undefined, notice: (m) => notices.push(m) },
          { queue, signal: ac.signal, ...opts },
        );
        return { stop: () => ac.abort(), done, notices };
      };
      const upsert = (i: number) => ({ body: { op: 'upsert', key: 'domain', company: { name: `Company ${i}`, domain: `company-${i}.example` } }, messageId: `m-${i}` });
      const url = process.env.COMPANYCTL_TEST_AMQP_URL ?? 'amqp://127.0.0.1:5672';

      it('applies upserts and deletes through the write path (events, actor amqp:<queue>); invalid ones land in the dead-letter queue with their reason, the store untouched', async () => {
        const queue = declared(uniqueName('in'));
        const config = consumerConfig(url);
        await admin.declareLikeConsumer(queue, config.consume.deadLetterExchange);
        const c = start(config, queue);
        await admin.send(queue, { op: 'upsert', key: 'domain', company: { name: 'Acme', domain: 'acme.de', country: 'DE' } }, { messageId: 'a-1' });
        await admin.send(queue, { op: 'upsert', key: 'domain', company: { domain: 'nameless.de' } }, { messageId: 'bad-1' });
        await admin.send(queue, 'not json', { messageId: 'bad-2' });
        await admin.send(queue, { op: 'upsert', key: 'domain', company: { name: 'ACME MÜNCHEN AG', domain: 'acme.de' } }, { messageId: 'a-2' });
        await admin.send(queue, { op: 'upsert', key: 'domain', company: { name: 'Beta', domain: 'beta.de' } }, { messageId: 'b-1' });
        await admin.send(queue, { op: 'delete', key: 'domain', company: { domain: 'beta.de' } }, { messageId: 'b-2' });
        await until(async () => (await admin.count(`${queue}.dead`)) === 2 && (await count('select count(*) as n from broker_applied_message')) === 4, 'the messages to be handled');
        c.stop();
        const report = await c.done;
        // Dead-lettered messages are acked once, with the rest: no channel error, no reconnect.
        expect(report).toMatchObject({ received: 6, created: 2, updated: 1, deleted: 1, deadLettered: 2, requeued: 0, reconnects: 0 });

        const acme = await company.getCompany(cdeps(), { kind: 'domain', domain: 'acme.de' }, { fresh: true });
        expect(acme.company).toMatchObject({ name: 'ACME MÜNCHEN AG', country: 'DE', version: 2 });
        // The search column is kept by the consumer's writes: the Unicode name is found folded.
        const found: string[] = [];
        for await (const c of company.listCompanies(cdeps(), { filter: { nameContains: 'acme münchen' }, sort: 'id', descending: false })) found.push(c.name);
        expect(found).toEqual(['ACME MÜNCHEN AG']);
        await expect(company.getCompany(cdeps(), { kind: 'domain', domain: 'nameless.de' })).rejects.toMatchObject({ code: 'COMPANYCTL_NOT_FOUND' });
        const events = await store.read.all<{ type: string; actor: string }>('select type, actor from outbox_event order by id');
        expect(events).toEqual(['company.created', 'company.updated', 'company.created', 'company.deleted'].map((type) => ({ type, actor: `amqp:${queue}` })));

        const dead = await admin.drainQueue(`${queue}.dead`);
        expect(dead.map((m) => [m.properties.messageId, m.properties.headers?.['x-companyctl-error-code'], m.properties.headers?.['x-companyctl-error-field']])).toEqual([
          ['bad-1', 'COMPANYCTL_INVALID_INPUT', 'company.name'],
          ['bad-2', 'COMPANYCTL_INVALID_INPUT', 'body'],
        ]);
        expect(String(dead[0]!.properties.headers?.['x-companyctl-error'])).toMatch(/name/);
        expect(dead[1]!.content.toString()).toBe('not json');
        expect(await admin.count(queue)).toBe(0);
      });

      it('a message delivered twice changes the store once; a key another company holds is dead-lettered, the rest of its batch applied', async () => {
        const queue = declared(uniqueName('twice'));
        await company.createCompany(cdeps(), validateNewCompany({ name: 'Holder', domain: 'holder.de', lei: '529900T8BM49AURSDO55' }));
        const config = consumerConfig(url);
        await admin.declareLikeConsumer(queue, config.consume.deadLetterExchange);
        const c = start(config, queue);
        const body = { op: 'upsert', key: 'domain', company: { name: 'Acme', domain: 'acme.de', industry: 'Tools' } };
        await admin.sendMany(queue, [
          { body, messageId: 'same' },
          { body: { op: 'upsert', key: 'domain', company: { name: 'Clash', domain: 'clash.de', lei: '529900T8BM49AURSDO55' } }, messageId: 'clash' },
          { body: { ...body, company: { ...body.company, industry: 'Changed' } }, messageId: 'same' },
          upsert(1),
        ]);
        await until(async () => (await count('select count(*) as n from broker_applied_message')) === 2 && (await admin.count(`${queue}.dead`)) === 1, 'the batch');
        // Later, the same message again (a redelivery after a lost ack, or a publisher retry).
        await admin.send(queue, body, { messageId: 'same' });
        await until(async () => (await admin.count(queue)) === 0, 'the redelivery to be taken');
        c.stop();
        const report = await c.done;
        expect(report).toMatchObject({ created: 2, updated: 0, duplicates: 2, deadLettered: 1, reconnects: 0 });
        expect((await company.getCompany(cdeps(), { kind: 'domain', domain: 'acme.de' }, { fresh: true })).company).toMatchObject({ industry: 'Tools', version: 1 });
        expect(await count(`select count(*) as n from outbox_event where type = 'company.created'`)).toBe(3);
        const [dead] = await admin.drainQueue(`${queue}.dead`);
        expect(dead!.properties.headers?.['x-companyctl-error-code']).toBe('COMPANYCTL_DUPLICATE_KEY');
      });

      it('the broker lost mid-stream (connections cut, refused for a while): reconnects with backoff, nothing lost, nothing applied twice', async () => {
        const queue = declared(uniqueName('loss'));
        const proxy = await brokerProxy();
        const n = 600;
        const config = consumerConfig(proxy.url);
        await admin.declareLikeConsumer(queue, config.consume.deadLetterExchange);
        const c = start(config, queue);
        await admin.sendMany(queue, Array.from({ length: n }, (_, i) => upsert(i)));
        await until(async () => (await count('select count(*) as n from company')) >= 100, 'the first companies');
        proxy.cut();
        await proxy.refuse();
        await new Promise((r) => setTimeout(r, 300));
        await proxy.accept();
        await until(async () => (await count('select count(*) as n from company')) > 200, 'more companies after the reconnect');
        proxy.cut();
        await until(async () => (await count('select count(*) as n from company')) === n && (await admin.count(queue)) === 0, 'every message', 120_000);
        c.stop();
        const report = await c.done;
        await proxy.close();
        // At least the first cut; the second may land after the last ack and the stop (timing).
        expect(report.reconnects).toBeGreaterThanOrEqual(1);
        expect(report.created).toBe(n);
        expect(await count(`select count(*) as n from outbox_event where type = 'company.created'`)).toBe(n);
        expect(await count(`select count(distinct domain) as n from company`)).toBe(n);
        expect(c.notices.some((m) => /reconnecting|retrying/.test(m))).toBe(true);
      });

      it.skipIf(dialect.name !== 'sqlite')('a store error (the SQLite file locked by another writer) requeues with backoff, and the message is applied once the store is free', async () => {
        const queue = declared(uniqueName('busy'));
        const config = consumerConfig(url, { retryBackoffMs: 50, retryMaxBackoffMs: 200 });
        await admin.declareLikeConsumer(queue, config.consume.deadLetterExchange);
        const c = start(config, queue);
        await admin.sendMany(queue, [upsert(0)]);
        await until(async () => (await count('select count(*) as n from company')) === 1, 'the first message');
        const { default: Database } = await import('better-sqlite3');
        const locker = new Database(join(home.home, 'store.db'));
        locker.exec('begin immediate');
        await admin.sendMany(queue, [upsert(1)]);
        await until(() => c.notices.some((m) => /requeued/.test(m)), 'a requeue after the store error');
        locker.exec('rollback');
        locker.close();
        await until(async () => (await count('select count(*) as n from company')) === 2 && (await admin.count(queue)) === 0, 'the message to be applied');
        c.stop();
        const report = await c.done;
        expect(report.requeued).toBeGreaterThanOrEqual(1);
        expect(report).toMatchObject({ created: 2, deadLettered: 0 });
        expect(await count(`select count(*) as n from outbox_event`)).toBe(2);
      });

      it('stops on abort: takes no more, acks what it holds, and a queue declared differently is a clear error', async () => {
        const queue = declared(uniqueName('other'));
        await admin.ch.assertQueue(queue, { durable: false });
        const c = start(consumerConfig(url), queue);
        await expect(c.done).rejects.toMatchObject({ code: 'COMPANYCTL_BROKER_REFUSED' });
        const ok = start(consumerConfig(url, { declare: false }), queue);
        await admin.sendMany(queue, Array.from({ length: 30 }, (_, i) => upsert(i)));
        await until(async () => (await count('select count(*) as n from company')) > 0, 'a first company');
        ok.stop();
        const report = await ok.done;
        expect(await count('select count(*) as n from company')).toBe(report.created);
        expect(await admin.count(queue)).toBe(30 - report.created);
      });
    });
  });
}
