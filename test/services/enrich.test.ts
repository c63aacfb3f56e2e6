// The enrich service against a real store (SQLite always, PostgreSQL when COMPANYCTL_TEST_PG_URL
// is set) and a local HTTP API: write path, provenance, resume after a cancel, run locks, and a
// concurrent edit between the API call and the write.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { validateNewCompany } from '../../src/domain/validate.js';
import { CompanyctlError } from '../../src/errors.js';
import { FileCache } from '../../src/infra/cache.js';
import { resolveStoreLocation, type StoreLocation } from '../../src/infra/db/location.js';
import { migrateStore, openStore, type Store } from '../../src/infra/db/store.js';
import * as company from '../../src/services/company.js';
import { parseEnrichConfig } from '../../src/services/enrich-config.js';
import { enrichCompanies, type EnrichDeps } from '../../src/services/enrich.js';
import { byDomain, enrichConfig, startApi, type TestApi } from '../../fixtures/enrich/server.js';
import { freshPgDatabase, PG_SKIP_REASON, PG_URL, tempHome } from '../helpers.js';

const dialects = [
  { name: 'sqlite', enabled: true },
  { name: 'postgresql', enabled: !!PG_URL },
] as const;

for (const dialect of dialects) {
  describe.skipIf(!dialect.enabled)(`enrich service on ${dialect.name}${dialect.enabled ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
    let home: ReturnType<typeof tempHome>;
    let pgDb: Awaited<ReturnType<typeof freshPgDatabase>> | undefined;
    let loc: StoreLocation;
    let store: Store;
    let api: TestApi;
    let deps: EnrichDeps;
    let companyDeps: company.CompanyDeps;

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
        for (const t of ['company_enrichment', 'enrich_run_item', 'enrich_run', 'company_external_id', 'outbox_event', 'company']) {
          await tx.em.getConnection().execute(`delete from ${t}`, [], 'run', tx.em.getTransactionContext());
        }
      });
      api = await startApi(byDomain);
      const cache = new FileCache(join(home.home, 'cache'), `${loc.key}-${Math.random()}`);
      companyDeps = { store: async () => store, cache, cacheTtlSeconds: 0, now: () => new Date(), actor: 'tester' };
      deps = { company: companyDeps, config: parseEnrichConfig(enrichConfig(api.url), 'test'), apiKey: 'k', cache };
    });
    afterEach(() => api.close());

    const add = async (over: Record<string, unknown>) => (await company.createCompany(companyDeps, validateNewCompany(over))).company.id;
    const sel = (ids: number[]) => ({ ids, raw: { ids } });

    it('writes each result with its event and provenance in one transaction', async () => {
      const a = await add({ name: 'Acme', domain: 'acme.de' });
      const s = await enrichCompanies(deps, sel([a]));
      expect(s).toMatchObject({ enriched: 1, requests: 1, state: 'completed' });
      const ev = await store.read.all<{ type: string; actor: string }>(`select type, actor from outbox_event where type = 'company.updated'`);
      expect(ev).toEqual([{ type: 'company.updated', actor: `tester (enrich run ${s.runId})` }]);
      const prov = await store.read.all<{ field: string; value: string }>('select field, value from company_enrichment where company_id = ? order by field', [a]);
      expect(prov).toContainEqual({ field: 'employees', value: '450' });
      expect(prov).toContainEqual({ field: 'postcode', value: '"10115"' });
      const item = await store.read.all<{ status: string; detail: string }>('select status, detail from enrich_run_item where run_id = ?', [s.runId]);
      expect(item[0]!.status).toBe('enriched');
      expect(JSON.parse(item[0]!.detail).fields).toEqual(['legalName', 'employees', 'industry', 'city', 'country', 'postcode']);
    });

    it('a cancelled run resumes where it stopped, without asking again for finished companies', async () => {
      const ids = [];
      for (let i = 0; i < 6; i++) ids.push(await add({ name: `C${i}`, domain: `c${i}.example` }));
      const ac = new AbortController();
      api.handler = (req) => {
        if (api.requests.length >= 3) ac.abort();
        return { status: 404, delayMs: api.requests.length >= 3 ? 300 : 0 };
      };
      const err = await enrichCompanies({ ...deps, signal: ac.signal, config: { ...deps.config, concurrency: 1 } }, sel(ids)).catch((e) => e);
      expect(err).toBeInstanceOf(CompanyctlError);
      expect(err.code).toBe('COMPANYCTL_CANCELLED');
      const asked = new Set(api.requests.slice(0, 2).map((r) => r.path));
      api.requests.length = 0;
      api.handler = byDomain;
      const s = await enrichCompanies({ ...deps, cache: undefined }, sel(ids));
      expect(s).toMatchObject({ runId: err.data.runId, resumed: true, alreadyDone: 2, notFound: 6, state: 'completed' });
      expect(api.requests).toHaveLength(4);
      for (const r of api.requests) expect(asked.has(r.path)).toBe(false);
    });

    it('a run held by a live process is locked; one held by a dead process is taken over', async () => {
      const a = await add({ name: 'Acme', domain: 'acme.de' });
      const ac = new AbortController();
      api.handler = () => (ac.abort(), { status: 404, delayMs: 100 });
      const err = await enrichCompanies({ ...deps, signal: ac.signal }, sel([a])).catch((e) => e);
      const runId = err.data.runId as number;
      const hold = async (owner: string) =>
        store.transaction((tx) =>
          tx.em.getConnection().execute(`update enrich_run set state = 'running', lock_owner = ?, heartbeat_at = ? where id = ?`, [owner, new Date().toISOString(), runId], 'run', tx.em.getTransactionContext()),
        );
      await hold(`${hostname()}:${process.ppid}:live`);
      const locked = await enrichCompanies(deps, sel([a])).catch((e) => e);
      expect(locked.code).toBe('COMPANYCTL_ENRICH_LOCKED');
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
      await hold(`${hostname()}:${dead}:gone`);
      api.handler = byDomain;
      expect(await enrichCompanies(deps, sel([a]))).toMatchObject({ runId, resumed: true, enriched: 1 });
    });

    it('an edit made while the API answers is not overwritten: the write is redone on the new version', async () => {
      const a = await add({ name: 'Acme', domain: 'acme.de' });
      api.handler = async (req, n) => {
        await company.updateCompany({ ...companyDeps, actor: 'admin' }, { kind: 'id', id: a }, { employees: 7 });
        return byDomain(req, n);
      };
      const s = await enrichCompanies(deps, sel([a]));
      expect(s.enriched).toBe(1);
      const { company: c } = await company.getCompany(companyDeps, { kind: 'id', id: a }, { fresh: true });
      expect(c).toMatchObject({ employees: 7, legalName: 'Acme Robotics GmbH', version: 3 });
    });
  });
}
