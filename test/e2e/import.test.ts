// End to end: the built binary imports and exports as a subprocess. A real import is killed
// with SIGKILL mid-file and resumes to the exact count; a second run of the same job while
// one runs is refused (cron overlap); exit codes 0 / 3 / 1; export -> import round trip.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BIN, bootstrapBin, freshPgDatabase, hasScript, PG_SKIP_REASON, PG_URL, ROOT, runBin, runBinAsync, tempHome } from '../helpers.js';

const FIX = join(ROOT, 'fixtures', 'import');

/** n valid rows, every domain unique, some names quoted. */
function bigCsv(path: string, n: number): void {
  const lines = ['name,domain,country,employees,tags'];
  for (let i = 1; i <= n; i++) lines.push(`${i % 3 === 0 ? `"Firm ${i}, Ltd"` : `Firm ${i}`},firm-${i}.com,DE,${i % 5000},a;b`);
  writeFileSync(path, `${lines.join('\n')}\n`);
}

const stores = [
  { name: 'sqlite', enabled: true },
  { name: 'postgresql', enabled: !!PG_URL },
] as const;

for (const kind of stores) {
  describe.skipIf(!kind.enabled)(`companyctl import/export binary on ${kind.name}${kind.enabled ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
    let home: ReturnType<typeof tempHome>;
    let pgDb: Awaited<ReturnType<typeof freshPgDatabase>> | undefined;
    let env: Record<string, string>;

    beforeAll(async () => {
      home = tempHome();
      pgDb = kind.name === 'postgresql' ? await freshPgDatabase() : undefined;
      env = { COMPANYCTL_HOME: home.home, ...(pgDb ? { COMPANYCTL_DB: pgDb.url } : {}) };
      bootstrapBin(env);
    });
    afterAll(async () => {
      await pgDb?.cleanup();
      home?.cleanup();
    });

    /** SQL against the store, whichever it is. */
    async function query(sql: string): Promise<Record<string, unknown>[]> {
      if (pgDb) {
        const { default: pg } = await import('pg');
        const c = new pg.Client({ connectionString: pgDb.url });
        await c.connect();
        try {
          return (await c.query(sql)).rows;
        } finally {
          await c.end();
        }
      }
      const db = new Database(join(home.home, 'data', 'companyctl.db'), { readonly: true });
      db.pragma('busy_timeout = 5000');
      try {
        return db.prepare(sql).all() as Record<string, unknown>[];
      } finally {
        db.close();
      }
    }
    const reset = () =>
      query('select 1').then(async () => {
        if (pgDb) {
          const { default: pg } = await import('pg');
          const c = new pg.Client({ connectionString: pgDb.url });
          await c.connect();
          await c.query('delete from company_external_id; delete from company; delete from import_job; delete from outbox_event');
          await c.end();
        } else {
          const db = new Database(join(home.home, 'data', 'companyctl.db'));
          db.exec('delete from company_external_id; delete from company; delete from import_job; delete from outbox_event');
          db.close();
        }
      });

    it('exit 0 with a summary on stdout and no progress bar without a terminal; exit 3 with rejects', async () => {
      await reset();
      const ok = runBin(['import', join(FIX, 'companies.csv')], { env });
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/^inserted\t6$/m);
      expect(ok.stderr).not.toContain('rows/s');
      const partial = runBin(['import', join(FIX, 'bad-rows.csv'), '--json'], { env });
      expect(partial.code).toBe(3);
      const s = JSON.parse(partial.stdout);
      expect(s).toMatchObject({ state: 'completed_with_rejects', inserted: 4, rejected: 7 });
      expect(readFileSync(s.rejectsFile, 'utf8')).toContain('3,country');
      const failed = runBin(['import', join(FIX, 'companies-windows1252.csv'), '--json'], { env });
      expect(failed.code).toBe(1);
      expect(JSON.parse(failed.stderr).error).toMatchObject({ code: 'COMPANYCTL_IMPORT_FAILED', field: '--encoding' });
      const usage = runBin(['import', join(FIX, 'companies.csv'), '--key', 'name', '--json'], { env });
      expect(usage.code).toBe(2);
      expect(JSON.parse(usage.stderr).error).toMatchObject({ code: 'COMPANYCTL_USAGE', field: '--key' });
      const list = JSON.parse(runBin(['import', 'list', '--json'], { env }).stdout);
      expect(list.items.map((j: { state: string }) => j.state)).toEqual(['failed', 'completed_with_rejects', 'completed']);
      const show = JSON.parse(runBin(['import', 'show', String(s.jobId), '--json'], { env }).stdout);
      expect(show).toMatchObject({ id: s.jobId, rowsDone: 11, inserted: 4, rejected: 7, lockOwner: null });
    });

    it.skipIf(!hasScript)('shows a progress bar on stderr when it is a terminal', async () => {
      await reset();
      const file = join(home.home, 'tty.csv');
      bigCsv(file, 3000);
      const envStr = Object.entries(env)
        .map(([k, v]) => `${k}='${v}'`)
        .join(' ');
      // script(1) gives the command a pseudo-terminal; stdout is then the terminal too.
      const { spawnSync } = await import('node:child_process');
      const out = spawnSync('script', ['-qec', `env ${envStr} NO_COLOR=1 ${process.execPath} ${BIN} import ${file} --chunk-size 500 2>&1`, '/dev/null'], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'xterm' },
      });
      expect(out.status, out.stdout).toBe(0);
      expect(out.stdout).toMatch(/rows\/s/);
      expect(out.stdout).toMatch(/3,000 rows/);
    }, 180_000);

    it('a killed import (SIGKILL mid-file) resumes to the exact count; an overlapping run is refused', async () => {
      await reset();
      const file = join(home.home, 'big.csv');
      const N = 150_000;
      bigCsv(file, N);
      // On SQLite, a bulk load (a 1-byte threshold makes this file one): the kill leaves the
      // secondary indexes dropped, and the resumed run builds them.
      const bulkEnv = { ...env, COMPANYCTL_IMPORT_BULK_BYTES: '1' };
      const child = spawn(process.execPath, [BIN, 'import', file, '--chunk-size', '1000', '--json'], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ...bulkEnv },
        stdio: 'ignore',
      });
      let done = 0;
      for (let i = 0; i < 600 && done < 5000; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const rows = await query(`select rows_done from import_job where state = 'running'`).catch(() => []);
        done = Number(rows[0]?.rows_done ?? 0);
      }
      expect(done, 'the import made no progress').toBeGreaterThanOrEqual(5000);

      // Cron overlap: the same command again while the first runs.
      const second = await runBinAsync(['import', file, '--chunk-size', '1000', '--json'], { env });
      expect(second.code).toBe(1);
      expect(JSON.parse(second.stderr).error.code).toBe('COMPANYCTL_IMPORT_LOCKED');

      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const [job] = await query(`select id, state, rows_done from import_job`);
      expect(job!.state).toBe('running');
      const committed = Number(job!.rows_done);
      expect(committed).toBeLessThan(N);
      // Exactly the committed chunks' rows are in: nothing half-written.
      expect(Number((await query('select count(*) as n from company'))[0]!.n)).toBe(committed);

      const indexes = async () => (await query(`select name from sqlite_master where type = 'index' and tbl_name = 'company' order by name`)).map((r) => r.name);
      if (kind.name === 'sqlite') {
        expect(await indexes()).not.toContain('company_name_lower');
        expect(await query(`select value from store_meta where key = 'import_deferred_indexes'`)).toEqual([{ value: String(job!.id) }]);
      }

      // Re-running the same command takes over the dead run's job and finishes it.
      const resumed = runBin(['import', file, '--chunk-size', '1000', '--json'], { env: bulkEnv });
      expect(resumed.code, resumed.stderr).toBe(0);
      const s = JSON.parse(resumed.stdout);
      expect(s).toMatchObject({ jobId: Number(job!.id), state: 'completed', rows: N, inserted: N, rejected: 0 });
      expect(s.resumedFrom).toBeGreaterThanOrEqual(committed);
      const [counts] = await query('select count(*) as n, count(distinct domain) as d from company');
      expect(Number(counts!.n)).toBe(N);
      expect(Number(counts!.d)).toBe(N);
      if (kind.name === 'sqlite') {
        expect(await indexes()).toEqual(expect.arrayContaining(['company_country', 'company_name_lower', 'company_updated']));
        expect(await query(`select value from store_meta where key = 'import_deferred_indexes'`)).toEqual([]);
      }
      // The same file again: a new job, and nothing changes.
      const again = JSON.parse(runBin(['import', file, '--json'], { env }).stdout);
      expect(again).toMatchObject({ inserted: 0, updated: 0, unchanged: N });
      const events = await query(`select type from outbox_event where type like 'import.%' order by id`);
      expect(events.map((e) => e.type)).toEqual(['import.completed', 'import.completed']);
    }, 180_000);

    it('export -> import round trip reproduces the companies; CSV formulas are neutralised', async () => {
      await reset();
      expect(runBin(['import', join(FIX, 'companies.json')], { env }).code).toBe(0);
      expect(runBin(['company', 'create', '--name', '=cmd|calc', '--domain', 'formula.com', '--city', '@SUM(A1)'], { env }).code).toBe(0);
      const fields = 'name,legalName,domain,registrationNumber,registrationCountry,lei,employees,revenueAmount,revenueCurrency,city,country,status,incorporationDate,tags,externalIds';
      const before = runBin(['company', 'list', '--all', '--json', '--fields', fields], { env });
      const out = join(home.home, 'export.csv');
      const ex = runBin(['export', '-o', out], { env });
      expect(ex.code, ex.stderr).toBe(0);
      const csv = readFileSync(out, 'utf8');
      expect(csv).toContain("'=cmd|calc");
      expect(csv).toContain("'@SUM(A1)");
      const stdoutExport = runBin(['export', '--format', 'ndjson', '--country', 'DE'], { env });
      expect(stdoutExport.stdout.trim().split('\n').map((l) => JSON.parse(l).domain)).toEqual(['mueller-maschinen.de']);

      await reset();
      const back = runBin(['import', out, '--json'], { env });
      expect(back.code, back.stderr).toBe(0);
      expect(JSON.parse(back.stdout)).toMatchObject({ inserted: 7, rejected: 0 });
      const after = runBin(['company', 'list', '--all', '--json', '--fields', fields], { env });
      const norm = (s: string) => (JSON.parse(s).items as Record<string, unknown>[]).sort((a, b) => String(a.domain).localeCompare(String(b.domain)));
      expect(norm(after.stdout)).toEqual(norm(before.stdout));
    }, 180_000);
  });
}
