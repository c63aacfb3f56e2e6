// Import features real third-party files need, against a real store: SQLite always,
// PostgreSQL when COMPANYCTL_TEST_PG_URL is set. Options come from the command's own flag
// parser, so each test reads as the command line it stands for.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { CompanyctlError } from '../../src/errors.js';
import { resolveStoreLocation, type StoreLocation } from '../../src/infra/db/location.js';
import { migrateStore, openStore, type Store } from '../../src/infra/db/store.js';
import { parseImportFlags } from '../../src/io/import-cli.js';
import { runImport, type ImportDeps, type ImportProgress } from '../../src/services/import/index.js';
import { freshPgDatabase, PG_SKIP_REASON, PG_URL, ROOT, tempHome } from '../helpers.js';

const FIX = join(ROOT, 'fixtures', 'import');
const dialects = [
  { name: 'sqlite', enabled: true },
  { name: 'postgresql', enabled: !!PG_URL },
] as const;

type Row = Record<string, unknown>;

/** `companyctl import <file> <flags...>` as ImportOptions. */
function flags(file: string, args: string[]) {
  const o: Record<string, unknown> = { key: 'domain', chunkSize: '2' };
  const multi = new Set(['map', 'set', 'value']);
  for (let i = 0; i < args.length; i++) {
    const name = args[i]!.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (name === 'dryRun') {
      o.dryRun = true;
      continue;
    }
    const v = args[++i]!;
    if (multi.has(name)) o[name] = [...((o[name] as string[]) ?? []), v];
    else o[name] = v;
  }
  return parseImportFlags(file === '-' ? '-' : join(FIX, file), o as Parameters<typeof parseImportFlags>[1]);
}

for (const dialect of dialects) {
  describe.skipIf(!dialect.enabled)(`imports of real files on ${dialect.name}${dialect.enabled ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, { timeout: 60_000 }, () => {
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
        for (const t of ['company_external_id', 'outbox_event', 'company', 'import_job']) {
          await tx.em.getConnection().execute(`delete from ${t}`, [], 'run', tx.em.getTransactionContext());
        }
      });
    });

    const notices: string[] = [];
    const progress: ImportProgress = { start() {}, update() {}, notice: (m) => void notices.push(m), stop() {} };
    const deps = (stdin = ''): ImportDeps => {
      const s = new PassThrough();
      s.end(stdin);
      return { store: async () => store, now: () => new Date('2026-12-01T00:00:00Z'), actor: 'tester', stdin: s, stateDir: join(home.home, 'state'), worker: false };
    };
    const run = (file: string, args: string[] = []) => {
      notices.length = 0;
      return runImport(deps(), flags(file, args), progress);
    };
    const companies = (cols = 'name, domain, country') => store.read.all<Row>(`select ${cols} from company order by id`);
    const ids = async () => (await store.read.all<Row>('select source, external_id from company_external_id order by source, external_id')).map((r) => `${r.source}:${r.external_id}`);
    const str = (v: unknown) => (v instanceof Date ? v.toISOString().slice(0, 10) : v === null ? null : String(v).trim());
    const rejectLines = (path: string) => readFileSync(path, 'utf8').trim().split(/\r?\n/).slice(1);

    it('--map "CIK=external:sec" reads bare ids; --set gives constants a column can override', async () => {
      const s = await run('sec-bare-ids.csv', [
        '--key', 'external:sec',
        '--map', 'CIK=external:sec',
        '--map', 'Entity Name=name',
        '--map', 'Revenue USD=revenueAmount',
        '--set', 'revenueCurrency=USD',
        '--set', 'country=US',
      ]);
      expect(s).toMatchObject({ state: 'completed', inserted: 4, rejected: 0, unknownColumns: [] });
      expect(await ids()).toEqual(['sec:1318605', 'sec:320193', 'sec:66740', 'sec:789019']);
      const rows = await companies('name, country, revenue_currency');
      expect(rows.map((r) => [r.name, str(r.country), str(r.revenue_currency)])).toEqual([
        ['Apple Inc.', 'US', 'USD'],
        ['MICROSOFT CORP', 'US', 'USD'],
        ['Tesla, Inc.', 'US', 'USD'],
        ['3M CO', 'DE', 'USD'], // its own Country column ("Germany") wins over --set country=US
      ]);
      // The same file again: every row found by its bare id, nothing changes.
      expect(await run('sec-bare-ids.csv', ['--key', 'external:sec', '--map', 'CIK=external:sec', '--map', 'Entity Name=name', '--map', 'Revenue USD=revenueAmount', '--set', 'revenueCurrency=USD', '--set', 'country=US'])).toMatchObject({ unchanged: 4, inserted: 0 });
    });

    it('--map "{Year}-{Rank}=external:f500" builds a key of two columns; one column feeds two fields; --date-format DD/MM/YYYY', async () => {
      const s = await run('f500.csv', [
        '--key', 'external:f500',
        '--map', '{Year}-{Rank}=external:f500',
        '--map', 'Company=name',
        '--map', 'Website=website',
        '--map', 'Website=domain',
        '--map', 'Founded=incorporationDate',
        '--date-format', 'DD/MM/YYYY',
      ]);
      expect(s).toMatchObject({ state: 'completed_with_rejects', inserted: 3, rejected: 2, unknownColumns: [] });
      expect(await ids()).toEqual(['f500:2023-1', 'f500:2023-2', 'f500:2024-3']);
      const rows = await companies('name, domain, website, incorporation_date');
      expect(rows.map((r) => [r.name, r.domain, r.website, str(r.incorporation_date)])).toEqual([
        ['Walmart', 'walmart.com', 'https://www.walmart.com/', '1969-10-31'],
        ['Amazon', 'amazon.com', 'https://www.amazon.com/about', '1994-07-05'],
        ['Apple', 'apple.com', 'https://apple.com/', '1977-01-03'],
      ]);
      const rejects = rejectLines(s.rejectsFile!);
      expect(rejects[0]).toMatch(/^5,incorporationDate,"""31\/02\/2020"" is not a real date \(read as DD\/MM\/YYYY\)"/);
      expect(rejects[1]).toMatch(/^6,externalIds,is required: it is the import key/); // no Rank: no key
      // A template naming a column the file lacks is refused before any row.
      await expect(run('f500.csv', ['--key', 'external:f500', '--map', '{Year}-{Position}=external:f500', '--map', 'Company=name'])).rejects.toMatchObject({
        data: { cause: 'COMPANYCTL_INVALID_INPUT' },
        message: expect.stringContaining('no column "Position"'),
      });
    });

    it('a national registry file: DD/MM/YYYY dates, --value maps its status and country words, --set the registration country', async () => {
      const s = await run('registry-gb.csv', [
        '--key', 'registration',
        '--map', 'CompanyName=name',
        '--map', 'CompanyNumber=registrationNumber',
        '--set', 'registrationCountry=GB',
        '--map', 'CompanyStatus=status',
        '--value', 'status:Liquidation=dissolved',
        '--value', 'status:active - proposal to strike off=dormant',
        '--value', 'country:England=GB',
        '--value', 'country:Wales=GB',
        '--map', 'RegAddress.Country=country',
        '--date-format', 'DD/MM/YYYY',
      ]);
      expect(s).toMatchObject({ state: 'completed', inserted: 4, rejected: 0 });
      const rows = await companies('name, registration_country, registration_number, status, country, incorporation_date');
      expect(rows.map((r) => [r.name, r.registration_number, str(r.registration_country), r.status, str(r.country), str(r.incorporation_date)])).toEqual([
        ['ACME WIDGETS LTD', '01234567', 'GB', 'active', 'GB', '2020-07-29'],
        ['BETA HOLDINGS LTD', '07654321', 'GB', 'dissolved', 'GB', '1999-02-01'],
        ['GAMMA TRADING LTD', '09876543', 'GB', 'dormant', 'GB', '2011-11-15'],
        ['DELTA LTD', '05555555', 'GB', 'dissolved', 'GB', '2011-11-15'], // an ISO date reads whatever the layout
      ]);
      // Without --date-format every row of such a file is refused, naming the date.
      const plain = await run('registry-gb.csv', ['--key', 'registration', '--map', 'CompanyName=name', '--map', 'CompanyNumber=registrationNumber', '--set', 'registrationCountry=GB', '--map', 'CompanyStatus=-', '--map', 'RegAddress.Country=-', '--dry-run']);
      expect(plain).toMatchObject({ rejected: 3, valid: 1 });
    });

    it('--records data reads a JSON:API document; its fields map by dot path', async () => {
      const s = await run('gleif-jsonapi.json', [
        '--records', 'data',
        '--key', 'lei',
        '--map', 'attributes.entity.legalName.name=name',
        '--map', 'attributes.lei=lei',
        '--map', 'attributes.entity.legalAddress.country=country',
        '--map', 'attributes.entity.legalAddress.city=city',
      ]);
      expect(s).toMatchObject({ format: 'json', inserted: 2, rejected: 1 });
      const rows = await companies('name, lei, country, city');
      expect(rows.map((r) => [r.name, r.lei, str(r.country), r.city])).toEqual([
        ['Demo Eins AG', '5299000DEMO000000132', 'DE', 'Berlin'],
        ['Démo Deux SA', '5299000DEMO000000229', 'FR', 'Paris'],
      ]);
      const reject = JSON.parse(readFileSync(s.rejectsFile!, 'utf8').trim());
      expect(reject).toMatchObject({ line: 64, field: 'lei', row: { id: '5299000DEMO000000399' } });
      await expect(run('gleif-jsonapi.json', ['--records', 'items', '--key', 'lei'])).rejects.toMatchObject({ message: expect.stringContaining('no array or object of records at "items"') });
    });

    it('reads a JSON object of records, and a folder of JSON files as one job', async () => {
      const obj = await run('object-of-records.json');
      expect(obj).toMatchObject({ format: 'json', rows: 3, inserted: 2, rejected: 1 });
      expect((await companies()).map((r) => [r.domain, str(r.country)])).toEqual([
        ['object-zero.example', 'AT'],
        ['object-one.example', 'NL'],
      ]);
      const folder = await run('json-folder');
      expect(folder).toMatchObject({ format: 'json', rows: 4, inserted: 3, rejected: 1 });
      expect((await companies()).map((r) => r.domain).slice(2)).toEqual(['folder-a.example', 'folder-b.example', 'folder-c.example']);
      expect(JSON.parse(readFileSync(folder.rejectsFile!, 'utf8').trim())).toMatchObject({ file: '2024-02.json', line: 6, field: 'domain' });
      // The same folder again is the same (finished) job's input: a new job, every row unchanged.
      expect(await run('json-folder')).toMatchObject({ unchanged: 3, rejected: 1 });
    });

    it('--encoding auto reads a Mac Roman file and says so; without it the error names Mac Roman', async () => {
      const e = await run('companies-macroman.csv').then(
        () => undefined,
        (x: unknown) => x as CompanyctlError,
      );
      expect(e).toBeInstanceOf(CompanyctlError);
      expect(e!.message).toContain('it looks like Mac Roman');
      expect(e!.hint).toContain('--encoding macintosh');
      const s = await run('companies-macroman.csv', ['--encoding', 'auto']);
      expect(s).toMatchObject({ state: 'completed', encoding: 'macintosh', inserted: 6 });
      expect(notices).toContain('--encoding auto: reading the input as Mac Roman (macintosh)');
      expect((await companies('name, city')).find((r) => r.city === 'München')?.name).toBe('Müller Maschinenbau');
    });

    it('a dry run shows 20 rejects, ends with "N more rejects" and writes its rejects file', async () => {
      const rejectsFile = join(home.home, 'dry-rejects.csv');
      const s = await run('many-rejects.csv', ['--dry-run', '--rejects', rejectsFile]);
      expect(s).toMatchObject({ state: 'dry-run', rows: 27, valid: 2, rejected: 25, rejectsFile });
      expect(notices.filter((n) => n.startsWith('line '))).toHaveLength(20);
      expect(notices.at(-1)).toBe(`5 more rejects in ${rejectsFile}`);
      expect(rejectLines(rejectsFile)).toHaveLength(25);
      const quiet = await run('many-rejects.csv', ['--dry-run']);
      expect(quiet.rejectsFile).toBeNull();
      expect(notices.at(-1)).toBe('5 more rejects (write them all with --rejects <file>)');
      expect(Number((await store.read.all<Row>('select count(*) as n from company'))[0]!.n)).toBe(0);
    });

    it('CRLF with a line break in a quoted header cell: rejects name the physical lines, no cell keeps a \\r', async () => {
      const rejectsFile = join(home.home, 'crlf-rejects.csv');
      const s = await run('crlf-quoted-header.csv', ['--dry-run', '--map', 'x=-', '--rejects', rejectsFile]);
      expect(s).toMatchObject({ rows: 4, valid: 2, rejected: 2 });
      const lines = rejectLines(rejectsFile).filter((l) => /^\d/.test(l));
      expect(lines.map((l) => l.split(',')[0])).toEqual(['5', '6']);
      expect(readFileSync(rejectsFile, 'utf8')).not.toMatch(/\r(?!\n)/);
      expect(lines[1]).toMatch(/,Delta,n4,not a domain either,4$/);
    });

    it('a repeated key reads the same in a dry run, a real run and across rows of one chunk', async () => {
      const dry = await run('duplicate-keys.csv', ['--dry-run', '--rejects', join(home.home, 'dup-dry.csv')]);
      expect(dry.rejected).toBe(1);
      expect(rejectLines(dry.rejectsFile!)[0]).toContain('repeats the domain key dup-a.example of an earlier row in this file (line 2)');
      const real = await run('duplicate-keys.csv', ['--chunk-size', '10']);
      const reasons = rejectLines(real.rejectsFile!).map((l) => l.split(',').slice(0, 3).join(','));
      expect(reasons).toEqual([
        '3,externalIds,repeats the external id sec:912595 of an earlier row in this file (line 2)',
        expect.stringMatching(/^4,domain,repeats the domain key dup-a\.example of an earlier row in this file \(company \d+\)$/),
      ]);
    });
  });
}

describe('jsonDocumentRecords: the cap on one record (--max-record-size)', () => {
  it('stops naming the record\'s first line and the flag when one record of a document is longer than the cap', async () => {
    const { jsonDocumentRecords } = await import('../../src/services/import/parse.js');
    const doc = `{"data": [\n{"name": "A"},\n{"name": "${'x'.repeat(200)}"}\n]}`;
    const chunks = (async function* () {
      for (let i = 0; i < doc.length; i += 16) yield doc.slice(i, i + 16);
    })();
    const seen: string[] = [];
    const e = await (async () => {
      for await (const batch of jsonDocumentRecords(chunks, ['data'], 100)) for (const r of batch) seen.push(String(r.object?.name));
    })().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CompanyctlError);
    expect((e as CompanyctlError).message).toBe('line 3: the record that starts here is longer than 100 characters (one JSON record)');
    expect((e as CompanyctlError).field).toBe('--max-record-size');
    expect(seen).toEqual(['A']);
  });
});
