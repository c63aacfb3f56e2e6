// The worker's parts without processes or timing: the job queue's claims and leases (an
// injected clock), racing claimers on PostgreSQL (SKIP LOCKED), the registry's alive/gone, cache
// trust and cache sync, change payloads, the heartbeat file, connection-trouble detection, Wake.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { validateNewCompany } from '../../src/domain/validate.js';
import { CompanyctlError } from '../../src/errors.js';
import { FileCache } from '../../src/infra/cache.js';
import * as q from '../../src/infra/db/job-queue.js';
import { resolveStoreLocation, type StoreLocation } from '../../src/infra/db/location.js';
import { decodeChange, encodeChange } from '../../src/infra/db/notify.js';
import { migrateStore, openStore, pgPlaceholders, runSql, type Store } from '../../src/infra/db/store.js';
import * as reg from '../../src/infra/db/worker-registry.js';
import { heartbeatFile, listeningSince, writeHeartbeat } from '../../src/infra/worker-heartbeat.js';
import { createCompany, fillCompanyCache, getCompany, updateCompany } from '../../src/services/company.js';
import { applyChange } from '../../src/services/worker/cache-sync.js';
import { isConnectionTrouble } from '../../src/services/worker/jobs.js';
import { workerSettings } from '../../src/services/worker/settings.js';
import { workerStatus } from '../../src/services/worker/status.js';
import { Wake } from '../../src/services/worker/wake.js';
import { freshPgDatabase, PG_SKIP_REASON, PG_URL, tempHome } from '../helpers.js';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();

const dialects = [
  { name: 'sqlite', enabled: true },
  { name: 'postgresql', enabled: !!PG_URL },
] as const;

for (const dialect of dialects) {
  describe.skipIf(!dialect.enabled)(`job queue and registry on ${dialect.name}${dialect.enabled ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
    let home: ReturnType<typeof tempHome>;
    let pgDb: Awaited<ReturnType<typeof freshPgDatabase>> | undefined;
    let loc: StoreLocation;
    let store: Store;

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
        for (const t of ['queued_job_input', 'queued_job', 'worker']) await runSql(tx, `delete from ${t}`);
      });
    });

    const queue = (n = 1, now = at(0)) =>
      store.transaction(async (tx) => {
        const ids: number[] = [];
        for (let i = 0; i < n; i++) {
          const id = await q.createQueuedJob(tx, { kind: 'import', options: { n: i }, actor: 'tester', role: 'editor', now });
          await q.enqueue(tx, id, null, { n: i }, now);
          ids.push(id);
        }
        return ids;
      });

    it('claims a due job once; a second claimer gets nothing until the lease runs out, then takes it over', async () => {
      const [id] = await queue();
      const a = await q.claimNext(store, 'A', at(1000), at(31_000));
      expect(a).toMatchObject({ id, state: 'running', lockedBy: 'A', attempts: 1 });
      expect(await q.claimNext(store, 'B', at(2000), at(32_000))).toBeUndefined();
      expect(await store.transaction((tx) => q.extendLeases(tx, 'A', at(40_000), at(10_000)))).toEqual([id]);
      expect(await q.claimNext(store, 'B', at(35_000), at(65_000))).toBeUndefined();
      const b = await q.claimNext(store, 'B', at(40_001), at(70_001));
      expect(b).toMatchObject({ id, lockedBy: 'B', attempts: 2 });
      // A lost it: its outcome and its hand-back change nothing.
      const outcome = { state: 'completed' as const, exitCode: 0, result: { rows: 1 }, error: null };
      expect(await store.transaction((tx) => q.finishQueuedJob(tx, id!, 'A', outcome, at(41_000)))).toBe(false);
      expect(await store.transaction((tx) => q.releaseQueuedJob(tx, id!, 'A', at(41_000), at(41_000)))).toBe(false);
      expect(await store.transaction((tx) => q.extendLeases(tx, 'A', at(80_000), at(41_000)))).toEqual([]);
      expect(await store.transaction((tx) => q.finishQueuedJob(tx, id!, 'B', outcome, at(42_000)))).toBe(true);
      expect(await q.getQueuedJob(store.read, id!)).toMatchObject({ state: 'completed', exitCode: 0, result: { rows: 1 }, lockedBy: null });
      expect(await q.claimNext(store, 'C', at(999_999), at(999_999))).toBeUndefined();
    });

    it('a job handed back waits for its time; staging is invisible to workers and removed when abandoned', async () => {
      const [id] = await queue();
      await q.claimNext(store, 'A', at(0), at(30_000));
      expect(await store.transaction((tx) => q.releaseQueuedJob(tx, id!, 'A', at(10_000), at(1000), 'busy'))).toBe(true);
      expect(await q.claimNext(store, 'B', at(9_999), at(40_000))).toBeUndefined();
      expect(await q.claimNext(store, 'B', at(10_000), at(40_000))).toMatchObject({ id, error: 'busy' });
      await store.transaction((tx) => q.finishQueuedJob(tx, id!, 'B', { state: 'failed', exitCode: 1, result: null, error: 'x' }, at(11_000)));
      const staging = await store.transaction(async (tx) => {
        const s = await q.createQueuedJob(tx, { kind: 'import', options: {}, actor: 'tester', role: null, now: at(0) });
        await q.addInputPiece(tx, s, 0, Buffer.from([1, 2, 3]));
        return s;
      });
      expect(await q.claimNext(store, 'C', at(99_000), at(99_000))).toBeUndefined();
      expect(await store.transaction((tx) => q.dropAbandonedStaging(tx, at(-1)))).toBe(0);
      expect(await store.transaction((tx) => q.dropAbandonedStaging(tx, at(1)))).toBe(1);
      expect(await q.getQueuedJob(store.read, staging)).toBeUndefined();
    });

    it('stages input in pieces and reads them back in order', async () => {
      const id = await store.transaction(async (tx) => {
        const j = await q.createQueuedJob(tx, { kind: 'import', options: {}, actor: 'tester', role: null, now: at(0) });
        await q.addInputPiece(tx, j, 1, Buffer.from('world'));
        await q.addInputPiece(tx, j, 0, Buffer.from('hello '));
        return j;
      });
      const parts: Buffer[] = [];
      for await (const p of q.readInput(store.read, id)) parts.push(p);
      expect(Buffer.concat(parts).toString()).toBe('hello world');
    });

    it('worker status: alive while it beats within the lease and is not stopped; shows what each holds', async () => {
      await store.transaction(async (tx) => {
        await reg.registerWorker(tx, { id: 'h1:10:a', host: 'h1', pid: 10, version: '0.1.0', now: at(0) });
        await reg.registerWorker(tx, { id: 'h2:20:b', host: 'h2', pid: 20, version: '0.1.0', now: at(0) });
        await reg.registerWorker(tx, { id: 'h3:30:c', host: 'h3', pid: 30, version: '0.1.0', now: at(0) });
        await reg.beat(tx, 'h1:10:a', at(25_000), { events: 7, jobs: 1 });
        await reg.setWorkerState(tx, 'h3:30:c', 'stopped', at(26_000));
      });
      const [id] = await queue();
      await q.claimNext(store, 'h1:10:a', at(25_000), at(55_000));
      const s = await workerStatus(store, new Date(T0 + 40_000), 30_000);
      const by = Object.fromEntries(s.map((w) => [w.host, w]));
      expect(by.h1).toMatchObject({ alive: true, state: 'running', holds: [id], eventsDelivered: 7, jobsRun: 1 });
      expect(by.h2).toMatchObject({ alive: false, state: 'running', holds: [] });
      expect(by.h3).toMatchObject({ alive: false, state: 'stopped' });
      expect(await reg.anyWorkerAlive(store.read, at(10_000))).toBe(true);
      expect(await reg.anyWorkerAlive(store.read, at(30_000))).toBe(false);
      expect(await store.transaction((tx) => reg.beat(tx, 'h3:30:c', at(41_000)))).toBe(false); // stopped: must register again
    });

    it.skipIf(dialect.name !== 'postgresql')('racing claimers on separate connections never take the same job (SKIP LOCKED)', async () => {
      const ids = await queue(30);
      const others = await Promise.all([openStore(loc), openStore(loc), openStore(loc)]);
      try {
        const claimed: number[][] = [[], [], []];
        await Promise.all(
          others.map(async (s, i) => {
            for (;;) {
              const j = await q.claimNext(s, `W${i}`, at(0), at(30_000));
              if (!j) return;
              claimed[i]!.push(j.id);
            }
          }),
        );
        const all = claimed.flat().sort((a, b) => a - b);
        expect(all).toEqual(ids);
        expect(new Set(all).size).toBe(30);
      } finally {
        await Promise.all(others.map((s) => s.close()));
      }
    });

    it('cache sync: a changed company this host cached is replaced by its new version; others are not filled; "all" drops company entries only', async () => {
      const cache = new FileCache(join(home.home, 'cache'), `${loc.key}-${Math.random()}`);
      const deps = { store: async () => store, cache, cacheTtlSeconds: 600, now: () => new Date(), actor: 'tester' };
      const a = (await createCompany(deps, validateNewCompany({ name: 'Acme', domain: `acme-${Math.random().toString(36).slice(2)}.de` }))).company;
      const b = (await createCompany(deps, validateNewCompany({ name: 'Globex', domain: `globex-${Math.random().toString(36).slice(2)}.com` }))).company;
      await getCompany(deps, { kind: 'id', id: a.id }); // cached on this host
      // Another host updates both (no cache of ours involved).
      const other = { ...deps, cache: undefined };
      await updateCompany(other, { kind: 'id', id: a.id }, { employees: 5 });
      await updateCompany(other, { kind: 'id', id: b.id }, { employees: 6 });
      // A read of b that began before the change must not cache its old copy afterwards.
      const generation = cache.generation();
      expect(await applyChange(cache, store.read, 600, { companies: [a.id, b.id] })).toEqual({ dropped: 0, refilled: 1 });
      expect(cache.get<{ employees: number; version: number }>(`company.id.${a.id}`)).toMatchObject({ employees: 5, version: 2 });
      fillCompanyCache(cache, 600, b, generation);
      expect(cache.get(`company.id.${b.id}`)).toBeUndefined();
      cache.set('auth.keys', { k: 1 }, 0);
      expect((await applyChange(cache, store.read, 600, { companies: 'all' })).dropped).toBeGreaterThanOrEqual(2);
      expect(cache.get(`company.id.${a.id}`)).toBeUndefined();
      expect(cache.get('auth.keys')).toEqual({ k: 1 });
    });
  });
}

describe('worker parts without a store', () => {
  it('cache trust: past maxAge an entry counts only if stored since the worker listens', () => {
    const home = tempHome();
    try {
      let now = T0;
      const cache = new FileCache(join(home.home, 'cache'), 'k', () => now);
      cache.set('company.id.1', { id: 1 }, 600);
      now = T0 + 5_000;
      expect(cache.get('company.id.1', { maxAgeMs: 30_000 })).toEqual({ id: 1 });
      now = T0 + 60_000;
      expect(cache.get('company.id.1', { maxAgeMs: 30_000 })).toBeUndefined();
      expect(cache.get('company.id.1', { maxAgeMs: 30_000, since: T0 })).toEqual({ id: 1 });
      expect(cache.get('company.id.1', { maxAgeMs: 30_000, since: T0 + 1 })).toBeUndefined();
      now = T0 + 601_000; // expired whatever the trust
      expect(cache.get('company.id.1', { maxAgeMs: 30_000, since: T0 })).toBeUndefined();
    } finally {
      home.cleanup();
    }
  });

  it('the heartbeat file vouches only for a live, recent, listening worker', () => {
    const home = tempHome();
    try {
      const dir = join(home.home, 'state');
      const beat = { workerId: 'w', host: hostname(), pid: process.pid, beatAt: T0, listeningSince: T0 - 5_000 };
      writeHeartbeat(dir, 'store', beat);
      expect(listeningSince(dir, 'store', 10_000, T0 + 9_000)).toBe(T0 - 5_000);
      expect(listeningSince(dir, 'store', 10_000, T0 + 11_000)).toBeUndefined();
      writeHeartbeat(dir, 'store', { ...beat, listeningSince: null });
      expect(listeningSince(dir, 'store', 10_000, T0)).toBeUndefined();
      writeHeartbeat(dir, 'store', { ...beat, pid: 2 ** 22 + 17 }); // no such process on this host
      expect(listeningSince(dir, 'store', 10_000, T0)).toBeUndefined();
      writeHeartbeat(dir, 'store', { ...beat, host: 'elsewhere', pid: 2 ** 22 + 17 }); // another host: its beat decides
      expect(listeningSince(dir, 'store', 10_000, T0)).toBe(T0 - 5_000);
      mkdirSync(join(dir, 'workers'), { recursive: true });
      writeFileSync(heartbeatFile(dir, 'store'), 'not json');
      expect(listeningSince(dir, 'store', 10_000, T0)).toBeUndefined();
      expect(listeningSince(dir, 'other-store', 10_000, T0)).toBeUndefined();
    } finally {
      home.cleanup();
    }
  });

  it('change payloads stay under NOTIFY\'s limit and unknown ones mean "everything changed"', () => {
    expect(decodeChange(encodeChange({ events: true, companies: [1, 2] }))).toEqual({ events: true, companies: [1, 2] });
    const many = encodeChange({ companies: Array.from({ length: 5_000 }, (_, i) => i + 1_000_000) });
    expect(many.length).toBeLessThan(8000);
    expect(decodeChange(many)).toEqual({ events: false, companies: 'all' });
    expect(decodeChange('garbage')).toEqual({ events: true, companies: 'all' });
    expect(decodeChange(encodeChange({ events: true }))).toEqual({ events: true, companies: undefined });
  });

  it('tells a lost connection from bad work', () => {
    expect(isConnectionTrouble(new CompanyctlError('COMPANYCTL_STORE_UNAVAILABLE', 'cannot open the store'))).toBe(true);
    expect(isConnectionTrouble(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionTrouble(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe(true);
    expect(isConnectionTrouble(new CompanyctlError('COMPANYCTL_IMPORT_FAILED', 'x', { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) }))).toBe(true);
    expect(isConnectionTrouble(new CompanyctlError('COMPANYCTL_IMPORT_FAILED', 'line 3: not gzip'))).toBe(false);
    expect(isConnectionTrouble(new CompanyctlError('COMPANYCTL_DUPLICATE_KEY', 'domain held'))).toBe(false);
  });

  it('numbers ? placeholders outside quoted strings', () => {
    expect(pgPlaceholders(`select ? as a, '?' as b, x from t where y = ? and z like 'a?b'`)).toBe(`select $1 as a, '?' as b, x from t where y = $2 and z like 'a?b'`);
  });

  it('settings: defaults per dialect, at least three beats per lease, a bad value names the key', () => {
    expect(workerSettings({}, 'postgresql')).toEqual({ leaseMs: 30_000, heartbeatMs: 5_000, pollMs: 5_000, retryAfterMs: 10_000, maxAttempts: 5 });
    expect(workerSettings({}, 'sqlite').pollMs).toBe(200);
    expect(workerSettings({ worker: { leaseSeconds: 3, heartbeatSeconds: 10 } }, 'sqlite').heartbeatMs).toBe(1000);
    expect(() => workerSettings({ worker: { lease: 3 } }, 'sqlite')).toThrow(/worker\.lease/);
    expect(() => workerSettings({ worker: { leaseSeconds: -1 } }, 'sqlite')).toThrow(/worker\.leaseSeconds/);
  });

  it('Wake: a kick ends a sleep, or the next one when none runs', async () => {
    const w = new Wake();
    w.kick();
    expect(await w.sleep(60_000)).toBe(true);
    const p = w.sleep(60_000);
    w.kick();
    expect(await p).toBe(true);
    expect(await w.sleep(0)).toBe(false);
  });
});
