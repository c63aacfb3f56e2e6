// Migration 0012 fills name_fold for the non-ASCII names a store already holds, on both dialects.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { resolveStoreLocation, type StoreLocation } from '../../src/infra/db/location.js';
import { migrateStore, openStore } from '../../src/infra/db/store.js';
import { listCompanies } from '../../src/infra/db/company-read.js';
import { freshPgDatabase, PG_SKIP_REASON, PG_URL, tempHome } from '../helpers.js';

for (const dialect of ['sqlite', 'postgresql'] as const) {
  const enabled = dialect === 'sqlite' || !!PG_URL;
  describe.skipIf(!enabled)(`migration 0012-name-fold on ${dialect}${enabled ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
    let home: ReturnType<typeof tempHome>;
    let pgDb: Awaited<ReturnType<typeof freshPgDatabase>> | undefined;
    let loc: StoreLocation;
    beforeAll(async () => {
      home = tempHome();
      pgDb = dialect === 'postgresql' ? await freshPgDatabase() : undefined;
      loc = resolveStoreLocation(pgDb?.url, join(home.home, 'store.db'));
    });
    afterAll(async () => {
      await pgDb?.cleanup();
      home?.cleanup();
    });

    it('folds the names written before it', async () => {
      await migrateStore(loc);
      // Back to the schema before 0012, with names written by an older companyctl.
      let store = await openStore(loc);
      await store.transaction(async (tx) => {
        const run = (sql: string, params: unknown[] = []) => tx.em.getConnection().execute(sql, params, 'run', tx.em.getTransactionContext());
        await run('alter table company drop column name_fold');
        await run(`delete from companyctl_migrations where name = '0012-name-fold'`);
        const now = new Date().toISOString();
        for (const name of ['NESTLÉ', 'Møller', 'Plain']) {
          await run(`insert into company (name, status, tags, version, created_at, updated_at) values (?, 'active', '[]', 1, ?, ?)`, [name, now, now]);
        }
      });
      await store.close();
      expect((await migrateStore(loc)).applied).toEqual(['0012-name-fold']);
      store = await openStore(loc);
      try {
        const find = async (needle: string) =>
          (await listCompanies(store.read, store.dialect, { nameContains: needle }, { sort: 'id', descending: false, limit: 10 })).map((c) => c.name);
        expect(await find('nestlé')).toEqual(['NESTLÉ']);
        expect(await find('MØLLER')).toEqual(['Møller']);
        expect(await find('plain')).toEqual(['Plain']);
        const folded = await store.read.all<{ name: string; name_fold: string | null }>('select name, name_fold from company order by id');
        expect(folded).toEqual([
          { name: 'NESTLÉ', name_fold: 'nestlé' },
          { name: 'Møller', name_fold: 'møller' },
          { name: 'Plain', name_fold: null },
        ]);
      } finally {
        await store.close();
      }
    });
  });
}
