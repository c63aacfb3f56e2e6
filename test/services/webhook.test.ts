// The webhook service against a real store (SQLite always, PostgreSQL when COMPANYCTL_TEST_PG_URL
// is set) and a local receiver: patterns, the dispatcher handler's per-webhook bookkeeping.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { resolveStoreLocation, type StoreLocation } from '../../src/infra/db/location.js';
import { migrateStore, openStore, type Store } from '../../src/infra/db/store.js';
import * as wh from '../../src/services/webhook.js';
import { startApi, type TestApi } from '../../fixtures/enrich/server.js';
import { freshPgDatabase, PG_SKIP_REASON, PG_URL, tempHome } from '../helpers.js';

describe('event patterns and signatures', () => {
  it('matches exact types, prefixes with .* and everything with *', () => {
    expect(wh.parseEventPatterns('company.*, import.completed,company.*')).toEqual(['company.*', 'import.completed']);
    expect(wh.matchesEvent(['company.*'], 'company.updated')).toBe(true);
    expect(wh.matchesEvent(['company.*'], 'companyx.updated')).toBe(false);
    expect(wh.matchesEvent(['import.completed'], 'import.failed')).toBe(false);
    expect(wh.matchesEvent(['*'], 'alert.raised')).toBe(true);
  });

  it('signs "<t>.<body>" with HMAC-SHA256, as documented', async () => {
    const { createHmac } = await import('node:crypto');
    const h = wh.signatureHeader('s3cret-s3cret-s3cret', '{"a":1}', 1700000000);
    expect(h).toBe(`t=1700000000,v1=${createHmac('sha256', 's3cret-s3cret-s3cret').update('1700000000.{"a":1}').digest('hex')}`);
    expect(wh.verifySignature('s3cret-s3cret-s3cret', h, '{"a":1}', 1700000100)).toBe(true);
    expect(wh.verifySignature('s3cret-s3cret-s3cret', h, '{"a":1}', 1700000400)).toBe(false);
    expect(wh.verifySignature('s3cret-s3cret-s3cret', 't=1700000000,v1=00', '{"a":1}', 1700000000)).toBe(false);
  });
});

const dialects = [
  { name: 'sqlite', enabled: true },
  { name: 'postgresql', enabled: !!PG_URL },
] as const;

for (const dialect of dialects) {
  describe.skipIf(!dialect.enabled)(`webhook service on ${dialect.name}${dialect.enabled ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
    let home: ReturnType<typeof tempHome>;
    let pgDb: Awaited<ReturnType<typeof freshPgDatabase>> | undefined;
    let loc: StoreLocation;
    let store: Store;
    let api: TestApi;
    let deps: wh.WebhookDeps;
    let clock: number;

    beforeAll(async () => {
      home = tempHome();
      pgDb = dialect.name === 'postgresql' ? await freshPgDatabase() : undefined;
      loc = resolveStoreLocation(pgDb?.url, join(home.home, 'store.db'));
      await migrateStore(loc);
      store = await openStore(loc);
    });
    afterAll(async () => {
      await store?.close();
      await pgDb?.cleanup();
      home?.cleanup();
    });
    beforeEach(async () => {
      await store.transaction(async (tx) => {
        for (const t of ['webhook_delivery', 'webhook']) await tx.em.getConnection().execute(`delete from ${t}`, [], 'run', tx.em.getTransactionContext());
      });
      api = await startApi(() => ({ status: 200 }));
      clock = Date.parse('2030-01-01T00:00:00Z');
      deps = { store: async () => store, now: () => new Date(clock), actor: 'tester' };
    });
    afterEach(() => api.close());

    const event = (id: number, type: string, at = clock) => ({ event: { id, type, companyId: null, actor: 'a', payload: { n: id }, createdAt: new Date(at).toISOString() }, attempt: 1 });

    it('no webhook, no handler (so no deliveries are queued for it)', async () => {
      expect(await wh.webhookEventHandler(deps)).toBeUndefined();
    });

    it('sends each event to the matching webhooks that existed when it was made, once', async () => {
      const before = event(1, 'company.created', clock - 1000);
      await wh.addWebhook(deps, { url: `${api.url}/a`, events: ['company.*'], secret: 'secret-secret-secret' });
      await wh.addWebhook(deps, { url: `${api.url}/b`, events: ['import.completed'], secret: 'secret-secret-secret' });
      clock += 1000;
      const handler = (await wh.webhookEventHandler(deps))!;
      const r = await handler.handle([before, event(2, 'company.updated'), event(3, 'import.completed'), event(4, 'alert.raised')]);
      expect(r.failed?.size).toBe(0);
      expect(api.requests.map((q) => [q.path, JSON.parse(q.body).id])).toEqual([['/a', 2], ['/b', 3]]);
      // Handed the same events again (a redelivery): nothing is sent twice.
      await handler.handle([event(2, 'company.updated'), event(3, 'import.completed')]);
      expect(api.requests).toHaveLength(2);
      const list = await wh.listWebhooks(deps);
      expect(list.map((h) => [h.id, h.delivered, h.failing])).toEqual([[list[0]!.id, 1, 0], [list[1]!.id, 1, 0]]);
    });

    it('a failing webhook fails its events (the rest of its batch is not tried) and records the error', async () => {
      const { webhook } = await wh.addWebhook(deps, { url: `${api.url}/down`, events: ['*'], secret: 'secret-secret-secret' });
      clock += 1000;
      api.handler = () => ({ status: 502 });
      const handler = (await wh.webhookEventHandler(deps))!;
      const r = await handler.handle([event(10, 'company.created'), event(11, 'company.updated')]);
      expect([...r.failed!.keys()]).toEqual([10, 11]);
      expect(r.failed!.get(10)).toContain('HTTP 502');
      expect(r.failed!.get(11)).toContain('not tried');
      expect(api.requests).toHaveLength(1);
      api.handler = () => ({ status: 200 });
      expect((await handler.handle([event(10, 'company.created')])).failed?.size).toBe(0);
      const [info] = await wh.listWebhooks(deps);
      expect(info).toMatchObject({ id: webhook.id, delivered: 1, failing: 0 });
      await wh.removeWebhook(deps, webhook.id);
      expect(await wh.listWebhooks(deps)).toEqual([]);
      await expect(wh.removeWebhook(deps, webhook.id)).rejects.toMatchObject({ code: 'COMPANYCTL_NOT_FOUND' });
    });
  });
}
