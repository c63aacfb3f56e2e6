// The dispatcher and its handlers against a real store: SQLite always, PostgreSQL when
// COMPANYCTL_TEST_PG_URL is set.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { validateNewCompany, parseCompanyPatch } from '../../src/domain/validate.js';
import { FileCache } from '../../src/infra/cache.js';
import { AuditLog } from '../../src/infra/audit-log.js';
import { resolveStoreLocation, type StoreLocation } from '../../src/infra/db/location.js';
import { migrateStore, openStore, type Store } from '../../src/infra/db/store.js';
import { deliveryCounts, listDeliveries, readStats } from '../../src/infra/db/events-store.js';
import * as company from '../../src/services/company.js';
import { backoffMs, dispatchDue, drain, type EventHandler } from '../../src/services/dispatch.js';
import { dispatchDepsFor, readMetrics, refreshAndCheck, retryEvents, type EventsEnv } from '../../src/services/events.js';
import { eventsSettings } from '../../src/services/events-settings.js';
import { verifyTrail } from '../../src/services/audit.js';
import { freshPgDatabase, PG_SKIP_REASON, PG_URL, tempHome } from '../helpers.js';

const dialects = [
  { name: 'sqlite', enabled: true },
  { name: 'postgresql', enabled: !!PG_URL },
] as const;

describe('backoff', () => {
  it('doubles per attempt, with jitter in the upper half, up to the cap', () => {
    const s = { backoffBaseMs: 1000, backoffMaxMs: 10_000 };
    expect([1, 2, 3, 4].map((a) => backoffMs(a, s, () => 0))).toEqual([500, 1000, 2000, 4000]);
    expect([1, 2, 3, 4].map((a) => backoffMs(a, s, () => 1))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffMs(10, s, () => 1)).toBe(10_000);
    const spread = new Set(Array.from({ length: 50 }, () => backoffMs(3, s)));
    expect(spread.size).toBeGreaterThan(10);
    for (const v of spread) expect(v).toBeGreaterThanOrEqual(2000), expect(v).toBeLessThanOrEqual(4000);
  });
});

for (const dialect of dialects) {
  describe.skipIf(!dialect.enabled)(`events on ${dialect.name}${dialect.enabled ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
    let home: ReturnType<typeof tempHome>;
    let pgDb: Awaited<ReturnType<typeof freshPgDatabase>> | undefined;
    let loc: StoreLocation;
    let store: Store;
    let env: EventsEnv;
    let cdeps: company.CompanyDeps;
    let logs: { code: string; message: string }[];

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
        for (const t of ['event_delivery', 'company_external_id', 'outbox_event', 'company', 'company_stat']) {
          await tx.em.getConnection().execute(`delete from ${t}`, [], 'run', tx.em.getTransactionContext());
        }
      });
      const stateDir = join(home.home, `state-${Math.random().toString(36).slice(2)}`);
      const cache = new FileCache(join(home.home, 'cache'), `${loc.key}-${Math.random()}`);
      logs = [];
      env = {
        store: async () => store,
        now: () => new Date(),
        stateDir,
        settings: () => eventsSettings({ events: { maxAttempts: 3, backoffSeconds: 0.001, leaseSeconds: 0.3 } }),
        cache,
        cacheTtlSeconds: 0,
        actor: 'tester',
        promFile: () => join(stateDir, 'companyctl.prom'),
        log: (e) => logs.push(e),
      };
      cdeps = { store: async () => store, cache, cacheTtlSeconds: 0, now: () => new Date(), actor: 'tester' };
    });
    afterEach(() => env.cache?.clear());

    const create = (over: Record<string, unknown>) => company.createCompany(cdeps, validateNewCompany({ name: 'Acme', ...over }));
    const audit = () => [...new AuditLog(env.stateDir).entries()];
    const groupBy = async (d: string) =>
      Object.fromEntries(
        (await store.read.all<{ v: string; n: unknown }>(`select coalesce(${d}, '') as v, count(*) as n from company where deleted_at is null group by coalesce(${d}, '')`)).map((r) => [
          String(r.v).trim(),
          Number(r.n),
        ]),
      );
    const derived = async () => {
      const s = await readStats(store.read);
      return Object.fromEntries((['country', 'industry', 'status'] as const).map((d) => [d, Object.fromEntries(s[d].map((r) => [r.value, r.count]))]));
    };
    const expectDerivedMatchesStore = async () => {
      expect(await derived()).toEqual({ country: await groupBy('country'), industry: await groupBy('industry'), status: await groupBy('status') });
    };

    it('delivers every event once to each handler: audit lines, derived counts, metrics', async () => {
      const a = await create({ domain: 'a.de', country: 'DE', industry: 'Robotics' });
      await create({ domain: 'b.fr', country: 'FR', industry: 'Food' });
      const c = await create({ domain: 'c.de', country: 'DE' });
      await company.updateCompany(cdeps, { kind: 'id', id: a.company.id }, parseCompanyPatch({ country: 'AT', status: 'dormant' }));
      await company.deleteCompany(cdeps, { kind: 'id', id: c.company.id });
      await expect(create({ domain: 'b.fr' })).rejects.toMatchObject({ code: 'COMPANYCTL_DUPLICATE_KEY' });
      const deps = await dispatchDepsFor(env);
      const r = await dispatchDue(deps);
      expect(r).toMatchObject({ fannedOut: 6, delivered: 24, failed: 0, dead: 0 });
      expect(await dispatchDue(deps)).toMatchObject({ fannedOut: 0, delivered: 0 });
      await expectDerivedMatchesStore();
      expect((await derived()).country).toEqual({ AT: 1, FR: 1 });

      const lines = audit();
      expect(lines.map((l) => l.action)).toEqual(['company.created', 'company.created', 'company.created', 'company.updated', 'company.deleted', 'company.write_failed']);
      expect(lines[3]).toMatchObject({ actor: 'tester', target: `company:${a.company.id}`, diff: { country: { from: 'DE', to: 'AT' }, status: { from: 'active', to: 'dormant' } } });
      expect(lines[0]!.after).toMatchObject({ domain: 'a.de' });
      expect(lines[5]!.data).toMatchObject({ operation: 'company.created', error: { code: 'COMPANYCTL_DUPLICATE_KEY' } });
      expect(new AuditLog(env.stateDir).verify()).toMatchObject({ ok: true, lines: 6 });
      expect((await readMetrics(env)).events.byType).toMatchObject({ 'company.created': 3, 'company.write_failed': 1 });
      expect(await deliveryCounts(store.read, { done: true })).toEqual({ pending: 0, failed: 0, dead: 0, done: 24 });
    });

    it('a delivery cut short (no ack) is delivered again after its lease, and still counts once', async () => {
      await create({ domain: 'a.de', country: 'DE' });
      await create({ domain: 'b.de', country: 'DE' });
      const crashing = { ...(await dispatchDepsFor(env)), beforeAck: () => {
        throw new Error('killed before the ack');
      } };
      await expect(dispatchDue(crashing)).rejects.toThrow('killed before the ack');
      expect(audit()).toHaveLength(2);
      // Still leased: nothing is due yet.
      expect(await dispatchDue(await dispatchDepsFor(env))).toMatchObject({ delivered: 0 });
      await new Promise((r) => setTimeout(r, 350));
      const again = await dispatchDue(await dispatchDepsFor(env));
      // "derived" marked its deliveries done in its own transaction: only the other three repeat.
      expect(again).toMatchObject({ delivered: 6, failed: 0 });
      expect(again.byHandler.derived).toBeUndefined();
      expect(audit().map((l) => l.eventId)).toEqual([audit()[0]!.eventId, audit()[1]!.eventId]);
      expect(new Set(audit().map((l) => l.eventId)).size).toBe(2);
      await expectDerivedMatchesStore();
      expect((await derived()).country).toEqual({ DE: 2 });
      expect((await readMetrics(env)).events.byType['company.created']).toBe(2);
    });

    it('a failing handler retries with backoff, goes dead with its last error, raises an alert, and can be retried', async () => {
      let attempts = 0;
      let broken = true;
      const flaky: EventHandler = {
        name: 'flaky',
        async handle() {
          attempts++;
          if (broken) throw new Error(`remote said no (${attempts})`);
        },
      };
      env.extraHandlers = [flaky];
      env.settings = () => eventsSettings({ events: { maxAttempts: 3, backoffSeconds: 0.2 } });
      const { company: c } = await create({ domain: 'a.de' });
      const first = await dispatchDue(await dispatchDepsFor(env));
      expect(first).toMatchObject({ delivered: 4, failed: 1, dead: 0 });
      const waiting = await listDeliveries(store.read, { status: 'failed' });
      expect(waiting).toHaveLength(1);
      expect(waiting[0]).toMatchObject({ handler: 'flaky', attempts: 1, lastError: 'remote said no (1)', companyId: c.id });
      expect(Date.parse(waiting[0]!.nextAttemptAt!)).toBeGreaterThan(Date.now() - 1000);

      const drained = await drain(await dispatchDepsFor(env), { waitMs: 3000 });
      expect(drained).toMatchObject({ failed: 1, dead: 1, remaining: { pending: 0, failed: 0, dead: 1 } });
      expect(attempts).toBe(3);
      const dead = await listDeliveries(store.read, { status: 'dead' });
      expect(dead).toEqual([expect.objectContaining({ handler: 'flaky', status: 'dead', attempts: 3, lastError: 'remote said no (3)' })]);
      // The other handlers were not held back by the failing one.
      expect(audit()).toHaveLength(1);

      const { alerts, raised } = await refreshAndCheck(env);
      expect(alerts.map((a) => a.name)).toEqual(['deadEvents']);
      expect(raised.map((a) => a.name)).toEqual(['deadEvents']);
      expect((await refreshAndCheck(env)).raised).toEqual([]); // raised once, while it keeps firing
      broken = false;
      expect(await retryEvents(env, { allDead: true })).toBe(1);
      const after = await drain(await dispatchDepsFor(env));
      expect(after.remaining).toMatchObject({ failed: 0, dead: 0, pending: 0 });
      expect(audit().map((l) => l.action)).toEqual(['company.created', 'alert.raised']);
      expect(audit()[1]).toMatchObject({ target: 'alert:deadEvents', data: { alert: 'deadEvents', value: 1, threshold: 0 } });
      expect((await refreshAndCheck(env)).alerts).toEqual([]);
      await expect(retryEvents(env, { eventId: 999_999 })).rejects.toMatchObject({ code: 'COMPANYCTL_NOT_FOUND' });
    });

    it('an import summary recounts the derived data and feeds the import metrics', async () => {
      await create({ domain: 'a.de', country: 'DE' });
      // A bulk write the way an import does it: many rows, one summary event.
      const { insertOutboxEvent } = await import('../../src/infra/db/company-write.js');
      await store.transaction(async (tx) => {
        for (let i = 0; i < 5; i++) {
          await tx.em.getConnection().execute(
            `insert into company (name, domain, country, status, tags, version, created_at, updated_at) values (?, ?, 'NL', 'active', '[]', 1, ?, ?)`,
            [`Bulk ${i}`, `bulk${i}.nl`, new Date().toISOString(), new Date().toISOString()],
            'run',
            tx.em.getTransactionContext(),
          );
        }
        await insertOutboxEvent(tx, {
          type: 'import.completed_with_rejects',
          companyId: null,
          actor: 'cron',
          payload: { jobId: 7, state: 'completed_with_rejects', rows: 6, inserted: 5, updated: 0, unchanged: 0, rejected: 1, seconds: 2.5, rowsPerSecond: 2, resumedFrom: 0 },
          createdAt: new Date().toISOString(),
        });
      });
      await dispatchDue(await dispatchDepsFor(env));
      expect((await derived()).country).toEqual({ DE: 1, NL: 5 });
      await expectDerivedMatchesStore();
      const m = await readMetrics(env);
      expect(m.imports).toMatchObject({ rows: { inserted: 5, rejected: 1 }, last: { jobId: 7, rows: 6, rejected: 1, seconds: 2.5 }, byState: { completed_with_rejects: 1 } });
      expect(m.imports.lastSuccessAt).not.toBeNull();
      expect(audit().at(-1)).toMatchObject({ action: 'import.completed_with_rejects', target: 'import:7', actor: 'cron' });
      // Later company events are counted on top of the recount, not twice.
      await create({ domain: 'b.de', country: 'DE' });
      await dispatchDue(await dispatchDepsFor(env));
      await expectDerivedMatchesStore();
    });

    it.skipIf(dialect.name !== 'postgresql')('several hosts draining at once deliver each event exactly once (SKIP LOCKED)', async () => {
      for (let i = 0; i < 60; i++) await create({ domain: `c${i}.de`, country: i % 2 ? 'DE' : 'FR' });
      const other = await openStore(loc);
      try {
        const small = (s: Store) => ({ ...env, store: async () => s, settings: () => eventsSettings({ events: { batchSize: 7 } }) });
        const [r1, r2, r3] = await Promise.all([
          dispatchDepsFor(small(store)).then((d) => drain(d)),
          dispatchDepsFor(small(other)).then((d) => drain(d)),
          dispatchDepsFor(small(other)).then((d) => drain(d)),
        ]);
        expect([...r1.errors, ...r2.errors, ...r3.errors]).toEqual([]);
        expect(r1.delivered + r2.delivered + r3.delivered).toBe(240);
        expect(r1.delivered).toBeGreaterThan(0);
        expect(r2.delivered + r3.delivered).toBeGreaterThan(0);
        expect(Number((await store.read.all<{ n: unknown }>('select count(*) as n from event_delivery where attempts <> 1'))[0]!.n)).toBe(0);
        expect(audit()).toHaveLength(60);
        expect(await verifyTrail(store, new AuditLog(env.stateDir))).toMatchObject({ ok: true, log: { lines: 60 } });
        await expectDerivedMatchesStore();
      } finally {
        await other.close();
      }
    });
  });
}
