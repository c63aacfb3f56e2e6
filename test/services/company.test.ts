// The company service against a real store: SQLite always, PostgreSQL when
// COMPANYCTL_TEST_PG_URL is set.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { CompanyInput } from '../../src/domain/company.js';
import { validateNewCompany, parseCompanyPatch } from '../../src/domain/validate.js';
import { CompanyctlError } from '../../src/errors.js';
import { FileCache } from '../../src/infra/cache.js';
import { resolveStoreLocation, type StoreLocation } from '../../src/infra/db/location.js';
import { migrateStore, openStore, type Store } from '../../src/infra/db/store.js';
import * as svc from '../../src/services/company.js';
import { freshPgDatabase, PG_SKIP_REASON, PG_URL, tempHome } from '../helpers.js';

const dialects = [
  { name: 'sqlite', enabled: true },
  { name: 'postgresql', enabled: !!PG_URL },
] as const;

for (const dialect of dialects) {
  describe.skipIf(!dialect.enabled)(`company service on ${dialect.name}${dialect.enabled ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
    let home: ReturnType<typeof tempHome>;
    let pgDb: Awaited<ReturnType<typeof freshPgDatabase>> | undefined;
    let loc: StoreLocation;
    let store: Store;
    let cache: FileCache;
    let deps: svc.CompanyDeps;

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
        for (const t of ['company_external_id', 'outbox_event', 'company']) await tx.em.getConnection().execute(`delete from ${t}`, [], 'run', tx.em.getTransactionContext());
      });
      cache = new FileCache(join(home.home, 'cache'), `${loc.key}-${Math.random()}`);
      deps = { store: async () => store, cache, cacheTtlSeconds: 0, now: () => new Date(), actor: 'tester' };
    });
    afterEach(() => cache.clear());

    const input = (over: Record<string, unknown> = {}): CompanyInput => validateNewCompany({ name: 'Acme', domain: 'acme.de', country: 'DE', ...over });
    const events = () => store.read.all<{ type: string; company_id: number; payload: unknown; actor: string }>('select type, company_id, payload, actor from outbox_event order by id');
    const count = async (table: string) => Number((await store.read.all<{ n: number }>(`select count(*) as n from ${table}`))[0]!.n);
    const codeOf = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (e) {
        expect(e).toBeInstanceOf(CompanyctlError);
        return (e as CompanyctlError).code;
      }
      throw new Error('expected an error');
    };

    it('creates a company with its outbox event in one transaction', async () => {
      const { company, eventId } = await svc.createCompany(deps, input({ externalIds: [{ source: 'crm', id: '7' }], revenueAmount: '10.25', revenueCurrency: 'EUR' }));
      expect(company).toMatchObject({ id: expect.any(Number), version: 1, domain: 'acme.de', revenueAmount: '10.25', externalIds: [{ source: 'crm', id: '7' }], deletedAt: null });
      expect(eventId).toBeGreaterThan(0);
      const ev = await events();
      expect(ev).toHaveLength(1);
      expect(ev[0]!.type).toBe('company.created');
      expect(ev[0]!.actor).toBe('tester');
      const payload = typeof ev[0]!.payload === 'string' ? JSON.parse(ev[0]!.payload) : ev[0]!.payload;
      expect(payload.before).toBeNull();
      expect(payload.after.domain).toBe('acme.de');
    });

    it('a failure inside the transaction leaves neither the row nor the event', async () => {
      // Make the outbox insert fail after the company row was written in the same transaction.
      await store.transaction(async (tx) => {
        await tx.em.getConnection().execute('alter table outbox_event rename to outbox_event_away', [], 'run', tx.em.getTransactionContext());
      });
      try {
        await expect(svc.createCompany(deps, input())).rejects.toThrow();
        expect(await count('company')).toBe(0);
        expect(await count('company_external_id')).toBe(0);
      } finally {
        await store.transaction(async (tx) => {
          await tx.em.getConnection().execute('alter table outbox_event_away rename to outbox_event', [], 'run', tx.em.getTransactionContext());
        });
      }
      expect(await count('outbox_event')).toBe(0);
    });

    it('refuses a duplicate natural key, naming the holder', async () => {
      const { company } = await svc.createCompany(deps, input({ lei: '529900T8BM49AURSDO55', registrationCountry: 'DE', registrationNumber: 'HRB 1' }));
      for (const clash of [{ domain: 'ACME.de' }, { domain: 'b.de', lei: '529900T8BM49AURSDO55' }, { domain: 'c.de', registrationCountry: 'de', registrationNumber: 'hrb 1' }]) {
        try {
          await svc.createCompany(deps, input(clash));
          throw new Error('expected a duplicate');
        } catch (e) {
          expect((e as CompanyctlError).code).toBe('COMPANYCTL_DUPLICATE_KEY');
          expect((e as CompanyctlError).data?.companyId).toBe(company.id);
        }
      }
      expect(await count('company')).toBe(1);
      // Each refused write rolled back and left a failure event of its own.
      const ev = await events();
      expect(ev.map((e) => e.type)).toEqual(['company.created', 'company.write_failed', 'company.write_failed', 'company.write_failed']);
      const payload = ev[1]!.payload;
      expect((typeof payload === 'string' ? JSON.parse(payload) : payload).error).toMatchObject({ code: 'COMPANYCTL_DUPLICATE_KEY' });
    });

    it('gets by id and natural keys, then serves the cache without the store', async () => {
      const { company } = await svc.createCompany(deps, input({ lei: '529900T8BM49AURSDO55', registrationCountry: 'US-DE', registrationNumber: '5123987' }));
      const first = await svc.getCompany(deps, { kind: 'domain', domain: 'acme.de' });
      expect(first).toMatchObject({ cached: false, company: { id: company.id } });
      const noStore = { ...deps, store: async () => Promise.reject(new Error('the store must not be opened on a cache hit')) };
      expect((await svc.getCompany(noStore, { kind: 'domain', domain: 'acme.de' })).cached).toBe(true);
      expect((await svc.getCompany(noStore, { kind: 'id', id: company.id })).cached).toBe(true);
      expect((await svc.getCompany(deps, { kind: 'lei', lei: '529900T8BM49AURSDO55' })).company.id).toBe(company.id);
      expect((await svc.getCompany(deps, { kind: 'registration', country: 'US-DE', number: '5123987' })).company.id).toBe(company.id);
      expect((await svc.getCompany(deps, { kind: 'id', id: company.id }, { fresh: true })).cached).toBe(false);
      // The first read filled every key's alias, so the LEI and registration reads hit too.
      expect(cache.stats()).toMatchObject({ hits: 4, misses: 1 });
    });

    it('a cache fill read before a concurrent write committed is discarded, not served', async () => {
      const { company } = await svc.createCompany(deps, input());
      // Another process with its own FileCache on the same folder commits an update after this
      // reader read version 1 from the store and before it fills the cache.
      const other = { ...deps, cache: new FileCache(join(home.home, 'cache'), cache.stats().dir.split('/').pop()!) };
      let raced = false;
      const slowReader: svc.CompanyDeps = {
        ...deps,
        store: async () => ({
          ...store,
          read: {
            async all<T>(sql: string, params?: unknown[]) {
              const rows = await store.read.all<T>(sql, params);
              if (!raced && sql.includes('from company c')) {
                raced = true;
                await svc.updateCompany(other, { kind: 'id', id: company.id }, parseCompanyPatch({ name: 'Acme Two' }));
              }
              return rows;
            },
          },
        }),
      };
      const read = await svc.getCompany(slowReader, { kind: 'id', id: company.id });
      expect(raced).toBe(true);
      expect(read.company.version).toBe(1);
      const next = await svc.getCompany(deps, { kind: 'id', id: company.id });
      expect(next).toMatchObject({ cached: false, company: { version: 2, name: 'Acme Two' } });
      expect((await svc.getCompany(deps, { kind: 'id', id: company.id })).cached).toBe(true);
    });

    it('a fill older than the last invalidation is refused; a current one stands', () => {
      const gen = cache.generation();
      expect(cache.fill([['k', 1]], 0, gen)).toBe(true);
      cache.delete(['k']);
      expect(cache.get('k')).toBeUndefined();
      expect(cache.fill([['k', 1]], 0, gen)).toBe(false);
      expect(cache.get('k')).toBeUndefined();
      expect(cache.fill([['k', 2]], 0, cache.generation())).toBe(true);
      expect(cache.get('k')).toBe(2);
    });

    it('every write invalidates what it touched', async () => {
      const { company } = await svc.createCompany(deps, input());
      await svc.getCompany(deps, { kind: 'domain', domain: 'acme.de' });
      await svc.updateCompany(deps, { kind: 'id', id: company.id }, parseCompanyPatch({ domain: 'acme.com' }));
      await expect(svc.getCompany(deps, { kind: 'domain', domain: 'acme.de' })).rejects.toMatchObject({ code: 'COMPANYCTL_NOT_FOUND' });
      const now = await svc.getCompany(deps, { kind: 'id', id: company.id });
      expect(now).toMatchObject({ cached: false, company: { domain: 'acme.com', version: 2 } });
      await svc.deleteCompany(deps, { kind: 'id', id: company.id });
      expect(await codeOf(svc.getCompany(deps, { kind: 'id', id: company.id }))).toBe('COMPANYCTL_NOT_FOUND');
    });

    it('updates with optimistic concurrency', async () => {
      const { company } = await svc.createCompany(deps, input());
      const key = { kind: 'id', id: company.id } as const;
      const r = await svc.updateCompany(deps, key, parseCompanyPatch({ employees: 5 }), { ifVersion: 1 });
      expect(r).toMatchObject({ changed: true, company: { employees: 5, version: 2 } });
      expect(await codeOf(svc.updateCompany(deps, key, parseCompanyPatch({ employees: 6 }), { ifVersion: 1 }))).toBe('COMPANYCTL_VERSION_CONFLICT');
      const same = await svc.updateCompany(deps, key, parseCompanyPatch({ employees: 5 }));
      expect(same).toMatchObject({ changed: false, company: { version: 2 } });
      const types = (await events()).map((e) => e.type);
      expect(types).toEqual(['company.created', 'company.updated', 'company.write_failed']);
    });

    it('soft-deletes, frees the keys, and restores only while they are free', async () => {
      const { company } = await svc.createCompany(deps, input());
      await svc.deleteCompany(deps, { kind: 'domain', domain: 'acme.de' });
      const other = await svc.createCompany(deps, input({ name: 'Acme 2' }));
      expect(await codeOf(svc.restoreCompany(deps, company.id))).toBe('COMPANYCTL_DUPLICATE_KEY');
      await svc.deleteCompany(deps, { kind: 'id', id: other.company.id }, { hard: true });
      const restored = await svc.restoreCompany(deps, company.id);
      expect(restored.company.deletedAt).toBeNull();
      expect(await codeOf(svc.restoreCompany(deps, company.id))).toBe('COMPANYCTL_NOT_DELETED');
      expect((await events()).map((e) => e.type)).toEqual([
        'company.created',
        'company.deleted',
        'company.created',
        'company.write_failed',
        'company.deleted',
        'company.restored',
        'company.write_failed',
      ]);
      expect(await count('company')).toBe(1);
    });

    it('lists with filters, sort and cursor paging', async () => {
      const names = ['Delta', 'alpha', 'Charlie', 'bravo', 'Echo'];
      for (const [i, name] of names.entries()) {
        await svc.createCompany(deps, input({ name, domain: `${name.toLowerCase()}.com`, country: i % 2 ? 'FR' : 'DE', tags: i < 2 ? ['vip'] : [], industry: 'Food' }));
      }
      const all = async (opts: Partial<svc.ListOptions>) => {
        const out = [];
        const it = svc.listCompanies(deps, { filter: {}, sort: 'name', descending: false, ...opts });
        let r = await it.next();
        for (; !r.done; r = await it.next()) out.push(r.value.name);
        return { names: out, cursor: r.value };
      };
      const page1 = await all({ limit: 2 });
      expect(page1.names).toHaveLength(2);
      expect(page1.cursor).toBeTruthy();
      const page2 = await all({ limit: 2, cursor: page1.cursor! });
      const page3 = await all({ limit: 2, cursor: page2.cursor! });
      expect(page3.cursor).toBeNull();
      const paged = [...page1.names, ...page2.names, ...page3.names];
      expect(new Set(paged).size).toBe(5);
      expect((await all({})).names).toEqual(paged);
      expect((await all({ filter: { country: 'FR' } })).names.sort()).toEqual(['alpha', 'bravo']);
      expect((await all({ filter: { tag: 'vip' } })).names.sort()).toEqual(['Delta', 'alpha']);
      expect((await all({ filter: { nameContains: 'HA' } })).names).toEqual(['alpha', 'Charlie']);
      expect((await all({ filter: { industry: 'food' } })).names).toHaveLength(5);
      expect((await all({ sort: 'id', descending: true, limit: 1 })).names).toEqual(['Echo']);
      expect((await all({ filter: { updatedSince: new Date(Date.now() + 60_000).toISOString() } })).names).toEqual([]);
      await expect(all({ limit: 2, cursor: page1.cursor!, sort: 'id' })).rejects.toMatchObject({ code: 'COMPANYCTL_USAGE' });
    });

    const namesMatching = async (needle: string) => {
      const out: string[] = [];
      for await (const c of svc.listCompanies(deps, { filter: { nameContains: needle }, sort: 'name', descending: false })) out.push(c.name);
      return out.sort();
    };

    it('finds names with Unicode case folding (NESTLÉ finds Nestlé, MØLLER finds Møller)', async () => {
      for (const [i, name] of ['Nestlé S.A.', 'A.P. Møller - Mærsk', 'Straße GmbH', 'ΣΟΦΟΣ', 'Plain Ltd'].entries()) {
        await svc.createCompany(deps, input({ name, domain: `n${i}.example` }));
      }
      expect(await namesMatching('NESTLÉ')).toEqual(['Nestlé S.A.']);
      expect(await namesMatching('nestlé')).toEqual(['Nestlé S.A.']);
      expect(await namesMatching('MØLLER')).toEqual(['A.P. Møller - Mærsk']);
      expect(await namesMatching('MÆRSK')).toEqual(['A.P. Møller - Mærsk']);
      expect(await namesMatching('STRASSE')).toEqual(['Straße GmbH']);
      expect(await namesMatching('σοφος')).toEqual(['ΣΟΦΟΣ']);
      expect(await namesMatching('PLAIN')).toEqual(['Plain Ltd']);
      expect(await namesMatching('%')).toEqual([]);
      // A renamed company is found by its new name only.
      const moller = (await svc.listCompanies(deps, { filter: { nameContains: 'møller' }, sort: 'id', descending: false }).next()).value as { id: number; version: number };
      await svc.updateCompany(deps, { kind: 'id', id: moller.id }, parseCompanyPatch({ name: 'Moller Shipping' }));
      expect(await namesMatching('MØLLER')).toEqual([]);
      expect(await namesMatching('MOLLER')).toEqual(['Moller Shipping']);
    });
  });
}
