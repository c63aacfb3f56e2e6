// Real exports against the built binary, on SQLite and PostgreSQL: countries as people write
// them, Unicode name search, U+FEFF kept, and an export with any external id re-importing into
// a new store unchanged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootstrapBin, freshPgDatabase, PG_SKIP_REASON, PG_URL, ROOT, runBin, tempHome } from '../helpers.js';

const FIX = join(ROOT, 'fixtures', 'import');
const stores = [
  { name: 'sqlite', enabled: true },
  { name: 'postgresql', enabled: !!PG_URL },
] as const;

for (const kind of stores) {
  describe.skipIf(!kind.enabled)(`real files on ${kind.name}${kind.enabled ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, { timeout: 120_000 }, () => {
    const homes: ReturnType<typeof tempHome>[] = [];
    const dbs: Awaited<ReturnType<typeof freshPgDatabase>>[] = [];
    let env: Record<string, string>;

    /** A new, initialised store with a logged-in admin. */
    async function newStore(): Promise<Record<string, string>> {
      const home = tempHome();
      homes.push(home);
      const db = kind.name === 'postgresql' ? await freshPgDatabase() : undefined;
      if (db) dbs.push(db);
      const e = { COMPANYCTL_HOME: home.home, ...(db ? { COMPANYCTL_DB: db.url } : {}) };
      bootstrapBin(e);
      return e;
    }
    beforeAll(async () => {
      env = await newStore();
    });
    afterAll(async () => {
      for (const d of dbs) await d.cleanup();
      for (const h of homes) h.cleanup();
    });
    const json = (args: string[], input?: string) => {
      const r = runBin([...args, '--json'], { env, input });
      const errorLine = r.code !== 0 && r.code !== 3 ? r.stderr.trim().split('\n').pop() : undefined;
      return { ...r, body: r.stdout ? JSON.parse(r.stdout) : undefined, error: errorLine ? JSON.parse(errorLine).error : undefined };
    };

    it('takes countries as names and alpha-3 in create, update, list and import; refuses unknown and ambiguous ones naming candidates', () => {
      const created = json(['company', 'create', '--name', 'Tata', '--domain', 'tata.example', '--country', 'India', '--registration-country', 'IND', '--registration-number', 'L28920MH1945PLC004520']);
      expect(created.code, created.stderr).toBe(0);
      expect(created.body).toMatchObject({ country: 'IN', registrationCountry: 'IN' });
      expect(json(['company', 'update', 'tata.example', '--country', 'United States of America']).body).toMatchObject({ country: 'US' });
      expect(json(['company', 'list', '--country', 'usa']).body.items.map((c: { name: string }) => c.name)).toEqual(['Tata']);
      const ambiguous = json(['company', 'create', '--name', 'X', '--domain', 'x.example', '--country', 'Congo']);
      expect(ambiguous.code).toBe(2);
      expect(ambiguous.error).toMatchObject({ code: 'COMPANYCTL_INVALID_INPUT', field: 'country' });
      expect(ambiguous.error.message).toMatch(/Republic of the Congo \(CG\).*\(CD\)/);
      const badFilter = json(['company', 'list', '--country', 'Germny']);
      expect(badFilter.code).toBe(2);
      expect(badFilter.error.message).toContain('closest: Germany (DE)');

      const imported = json(['import', join(FIX, 'countries.csv')]);
      expect(imported.code, imported.stderr).toBe(3);
      expect(imported.body).toMatchObject({ inserted: 4, rejected: 2 });
      const rejects = readFileSync(imported.body.rejectsFile, 'utf8');
      expect(rejects).toMatch(/^6,country,.*more than one country.*\(CG\).*\(CD\)/m);
      expect(rejects).toMatch(/^7,country,.*closest: .*\(KP\).*\(KR\)/m);
      const list = json(['company', 'list', '--fields', 'domain,country,registrationCountry', '--sort', 'id']).body.items;
      expect(list.filter((c: { domain: string }) => c.domain !== 'tata.example')).toEqual([
        { domain: 'samsung.example', country: 'KR', registrationCountry: 'KR' },
        { domain: 'siemens.example', country: 'DE', registrationCountry: 'DE' },
        { domain: 'tesco.example', country: 'GB', registrationCountry: 'GB' },
        { domain: 'huawei.example', country: 'CN', registrationCountry: 'CN' },
      ]);
    });

    it('finds names by Unicode case folding and keeps U+FEFF inside a name', () => {
      for (const [name, domain] of [
        ['Nestlé S.A.', 'nestle.example'],
        ['A.P. Møller - Mærsk', 'maersk.example'],
        ['a\ufeffb', 'feff.example'],
      ]) {
        expect(json(['company', 'create', '--from-json', '-'], JSON.stringify({ name, domain })).code).toBe(0);
      }
      const names = (needle: string) => json(['company', 'list', '--name', needle]).body.items.map((c: { name: string }) => c.name);
      expect(names('NESTLÉ')).toEqual(['Nestlé S.A.']);
      expect(names('MØLLER')).toEqual(['A.P. Møller - Mærsk']);
      const plain = runBin(['company', 'list', '--name', 'NESTLÉ', '--fields', 'name'], { env });
      expect(plain.stdout).toContain('Nestlé S.A.');
      expect(json(['company', 'get', 'feff.example', '--fresh']).body.name).toBe('a\ufeffb');
    });

    it('imports keep the folded search column: inserts and updates on both write paths', () => {
      const names = (needle: string) => json(['company', 'list', '--name', needle]).body.items.map((c: { name: string }) => c.name).sort();
      expect(json(['import', join(FIX, 'unicode-names.csv')]).code).toBe(0);
      expect(names('nestlé waters s.a')).toEqual(['NESTLÉ WATERS S.A.']);
      expect(names('møller a/s')).toEqual(['MØLLER A/S']);
      // The external-key path writes through the batch writer (not SQLite's per-row upsert).
      const renamed = json(['import', join(FIX, 'unicode-names-renamed.csv'), '--key', 'external:crm']);
      expect(renamed.body).toMatchObject({ updated: 2, rejected: 0 });
      expect(names('NESTLÉ WATERS S.A')).toEqual([]);
      expect(names('NESTLÉ WATERS SUISSE')).toEqual(['Nestlé Waters Suisse']);
      expect(names('MØLLER HOLDING')).toEqual(['Møller Holding']);
      // And back through the per-row path (domain key).
      expect(json(['import', join(FIX, 'unicode-names.csv')]).body).toMatchObject({ updated: 2 });
      expect(names('MØLLER A/S')).toEqual(['MØLLER A/S']);
    });

    it('import flags for real files: a dry run without a terminal ends with "N more rejects"; bad flags exit 2 naming the flag', () => {
      const rejects = join(homes[0]!.home, 'dry.csv');
      const dry = runBin(['import', join(FIX, 'many-rejects.csv'), '--dry-run', '--rejects', rejects], { env });
      expect(dry.code).toBe(3);
      expect(dry.stdout).toMatch(/^rejected\t25$/m);
      expect(dry.stderr.trim().split('\n').at(-1)).toBe(`5 more rejects in ${rejects}`);
      expect(readFileSync(rejects, 'utf8').trim().split('\n')).toHaveLength(26);
      const asJson = json(['import', join(FIX, 'many-rejects.csv'), '--dry-run']);
      expect(asJson.body).toMatchObject({ state: 'dry-run', rejected: 25, valid: 2 });
      expect(asJson.stderr).toContain('5 more rejects (write them all with --rejects <file>)');
      for (const [args, flag] of [
        [['--set', 'country=Narnia'], '--set'],
        [['--set', 'colour=red'], '--set'],
        [['--value', 'status-active'], '--value'],
        [['--date-format', 'DD.MM.YY'], '--date-format'],
        [['--map', 'CIK=external:SEC Filings'], '--map'],
        [['--records', 'data', '--format', 'csv'], '--records'],
      ] as const) {
        const r = json(['import', join(FIX, 'sec-bare-ids.csv'), ...args]);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
        expect(r.error).toMatchObject({ code: 'COMPANYCTL_USAGE', field: flag });
      }
      expect(json(['import', join(FIX, 'sec-bare-ids.csv'), '--set', 'country=Narnia']).error.message).toContain('"Narnia" is not a country');
    });

    it('an export with external ids holding , ; : quotes and backslashes re-imports into a new store unchanged', async () => {
      const ids = [
        { source: 'crm', id: 'A,1' },
        { source: 'erp', id: 'x;y:z' },
        { source: 'web', id: 'https://crm.example.com/accounts/' + 'q'.repeat(300) + '?a=1,b=2' },
        { source: 'sec', id: 'say "hi", \'you\'' },
        { source: 'dos', id: 'C:\\dir\\,file;' },
      ];
      const created = json(['company', 'create', '--from-json', '-'], JSON.stringify({ name: 'Acme', domain: 'acme.example', externalIds: ids }));
      expect(created.code, created.stderr).toBe(0);
      const out = join(homes[0]!.home, 'out.csv');
      expect(runBin(['export', '-o', out, '--fields', 'name,domain,externalIds'], { env }).code).toBe(0);
      expect(readFileSync(out, 'utf8')).toContain('crm:A\\,1');
      const fresh = await newStore();
      const r = runBin(['import', out, '--json'], { env: fresh });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const got = JSON.parse(runBin(['company', 'get', 'acme.example', '--json', '--fresh'], { env: fresh }).stdout);
      const sorted = (l: { source: string; id: string }[]) => [...l].sort((a, b) => a.source.localeCompare(b.source));
      expect(got.externalIds).toEqual(sorted(ids));
      // And again on the store that exported it: every row unchanged.
      const again = JSON.parse(runBin(['import', out, '--json'], { env: fresh }).stdout);
      expect(again).toMatchObject({ inserted: 0, updated: 0, rejected: 0 });
      expect(again.unchanged).toBe(again.rows);
    });
  });
}
