// db copy: SQLite -> PostgreSQL -> SQLite keeps every table equal (users, sessions, tokens,
// events, deliveries, import jobs, webhooks, the audit chain), ids and sequences; the admin logs
// in to the copy; a non-empty target is refused. Needs COMPANYCTL_TEST_PG_URL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { openRaw, OWN_TABLES, TableChecksum } from '../../src/infra/db/copy.js';
import { resolveStoreLocation } from '../../src/infra/db/location.js';
import { ADMIN_PASSWORD, freshPgDatabase, PG_SKIP_REASON, PG_URL, ROOT, runInProcess, tempHome } from '../helpers.js';

const Database = createRequire(import.meta.url)(join(ROOT, 'node_modules', 'better-sqlite3')) as typeof import('better-sqlite3');

async function tableSums(db: string): Promise<Map<string, { rows: number; sum: string }>> {
  const raw = await openRaw(resolveStoreLocation(db, db));
  try {
    const out = new Map<string, { rows: number; sum: string }>();
    for (const t of await raw.tables()) {
      if (OWN_TABLES.has(t)) continue;
      const sum = new TableChecksum();
      for await (const r of raw.rows(t, await raw.columns(t))) sum.add(r);
      out.set(t, { rows: sum.rows, sum: sum.hex() });
    }
    return out;
  } finally {
    await raw.close();
  }
}

describe.skipIf(!PG_URL)(`db copy${PG_URL ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
  let home: ReturnType<typeof tempHome>;
  let pg: Awaited<ReturnType<typeof freshPgDatabase>>;
  let other: Awaited<ReturnType<typeof freshPgDatabase>>;
  const env = () => ({ COMPANYCTL_HOME: home.home });
  const cli = (args: string[], opts: { stdin?: string; env?: Record<string, string>; tty?: boolean } = {}) => runInProcess(args, { ...env(), ...opts.env }, opts);
  const source = () => join(home.home, 'data', 'companyctl.db');

  beforeAll(async () => {
    home = tempHome();
    pg = await freshPgDatabase();
    other = await freshPgDatabase();
    expect((await cli(['init', '--password-stdin'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
    expect((await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
    for (const [name, extra] of [
      ['Acme', ['--domain', 'acme.de', '--country', 'DE', '--revenue-amount', '1250000.50', '--revenue-currency', 'EUR']],
      ['Ünïcode\tTab "Quote" \\ Backslash', ['--tag', 'a', '--tag', 'b']],
      ['Gone', []],
    ] as const) {
      const r = await cli(['company', 'create', '--name', name, ...extra]);
      expect(r.code, r.stderr).toBe(0);
    }
    expect((await cli(['company', 'delete', '3', '--hard', '--yes'])).code).toBe(0);
    expect((await cli(['user', 'add', 'bob', '--role', 'editor', '--password-stdin'], { stdin: 'long-secret-passphrase' })).code).toBe(0);
    expect((await cli(['token', 'create', '--name', 'nightly', '--role', 'editor'])).code).toBe(0);
    expect((await cli(['webhook', 'add', 'https://hooks.example.com/x', '--events', 'company.*'])).code).toBe(0);
    const imported = await cli(['import', join(ROOT, 'fixtures', 'import', 'companies-crlf.csv')]);
    expect(imported.code, imported.stderr).toBeLessThan(4);
    // A queued job with its binary input (every byte value), as a worker host would find it.
    const db = new Database(source());
    const now = new Date().toISOString();
    const job = db
      .prepare(`insert into queued_job (kind, state, options, actor, run_after, created_at, updated_at) values ('import', 'queued', '{"format":"csv"}', 'admin', ?, ?, ?)`)
      .run(now, now, now).lastInsertRowid;
    db.prepare('insert into queued_job_input (job_id, seq, data) values (?, 0, ?)').run(job, Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
    db.close();
  });
  afterAll(async () => {
    await pg?.cleanup();
    await other?.cleanup();
    home?.cleanup();
  });

  it('SQLite -> PostgreSQL -> SQLite: every table equal, counts and checksums compared, the audit chain intact', async () => {
    const before = await tableSums(source());
    const toPg = await cli(['db', 'copy', '--to', pg.url, '--json']);
    expect(toPg.code, toPg.stderr).toBe(0);
    const report = JSON.parse(toPg.stdout);
    expect(report.ok).toBe(true);
    // Every table of the schema is copied (a table added by a later migration too).
    expect(report.tables.map((t: { table: string }) => t.table).sort()).toEqual([...before.keys()].sort());
    for (const t of report.tables) expect(t, t.table).toMatchObject({ sourceRows: before.get(t.table)!.rows, targetRows: before.get(t.table)!.rows, ok: true });
    for (const t of ['app_user', 'auth_session', 'company', 'outbox_event', 'event_delivery', 'import_job', 'webhook', 'audit_entry', 'store_meta', 'queued_job', 'queued_job_input']) {
      expect(before.get(t)!.rows, t).toBeGreaterThan(0);
    }

    const back = join(home.home, 'back.db');
    // The session's token works on the copy: same store id and keys.
    const token = (await cli(['auth', 'token'])).stdout.trim();
    const toSqlite = await cli(['db', 'copy', '--to', back, '--json'], { env: { COMPANYCTL_DB: pg.url, COMPANYCTL_TOKEN: token } });
    expect(toSqlite.code, toSqlite.stderr).toBe(0);
    const after = await tableSums(back);
    // Each copy records its db.copied event in its source after copying: the round trip is exact.
    expect(after).toEqual(before);
    const blob = new Database(back, { readonly: true });
    expect([...(blob.prepare('select data from queued_job_input').get() as { data: Buffer }).data]).toEqual(Array.from({ length: 256 }, (_, i) => i));
    blob.close();

    // The admin logs in to the PostgreSQL copy from another machine and writes: ids continue.
    const host2 = tempHome();
    try {
      const env2 = { COMPANYCTL_HOME: host2.home, COMPANYCTL_DB: pg.url };
      const cli2 = (args: string[], stdin?: string) => runInProcess(args, env2, { stdin });
      expect((await cli2(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], ADMIN_PASSWORD)).code).toBe(0);
      expect(JSON.parse((await cli2(['company', 'get', 'acme.de', '--json'])).stdout)).toMatchObject({ id: 1, revenueAmount: '1250000.5', revenueCurrency: 'EUR' });
      expect(JSON.parse((await cli2(['company', 'get', '2', '--json'])).stdout)).toMatchObject({ name: 'Ünïcode Tab "Quote" \\ Backslash', tags: ['a', 'b'] });
      const created = JSON.parse((await cli2(['company', 'create', '--name', 'After', '--json'])).stdout);
      expect(created.id).toBeGreaterThan(3);
      const verify = await cli2(['audit', 'verify', '--json']);
      expect(verify.code, verify.stderr).toBe(0);
      expect(JSON.parse(verify.stdout).entries).toBeGreaterThan(before.get('audit_entry')!.rows);
    } finally {
      host2.cleanup();
    }
  });

  it('refuses a non-empty target and a target that is the store itself; leaves no file behind on failure', async () => {
    const r = await cli(['db', 'copy', '--to', pg.url, '--json']);
    expect(r.code).toBe(1);
    const lastLine = (text: string) => JSON.parse(text.trim().split('\n').at(-1)!);
    expect(lastLine(r.stderr).error).toMatchObject({ code: 'COMPANYCTL_TARGET_NOT_EMPTY', field: '--to' });
    const self = await cli(['db', 'copy', '--to', source(), '--json']);
    expect(lastLine(self.stderr).error.code).toBe('COMPANYCTL_USAGE');
    const plain = await cli(['db', 'copy', '--to', pg.url]);
    expect(plain.stderr).toContain('is not empty');
    const tty = await cli(['db', 'copy', '--to', other.url], { tty: true });
    expect(tty.code, tty.stderr).toBe(0);
    expect(tty.stdout).toMatch(/^table\s+sourceRows/m);
    const plainCopy = await cli(['db', 'copy', '--to', join(home.home, 'plain.db')]);
    expect(plainCopy.code, plainCopy.stderr).toBe(0);
    expect(plainCopy.stdout).toMatch(/^company\t\d+\t\d+\t[0-9a-f]{16}\t[0-9a-f]{16}\ttrue$/m);
    const viewer = (await cli(['token', 'create', '--name', 'ro', '--role', 'viewer'])).stdout.trim();
    expect((await cli(['db', 'copy', '--to', join(home.home, 'x.db')], { env: { COMPANYCTL_TOKEN: viewer } })).code).toBe(4);
  });

  it('reads PostgreSQL rows whole when a multi-byte character straddles two network chunks', async () => {
    const db = await freshPgDatabase();
    const raw = await openRaw(resolveStoreLocation(db.url, db.url));
    try {
      const value = 'üß€'.repeat(100);
      await raw.execute(`create table multibyte as select i, '${value}' || i as v from generate_series(1, 5000) i`);
      let n = 0;
      for await (const r of raw.rows('multibyte', await raw.columns('multibyte'))) {
        n++;
        expect(r[1]).toBe(`${value}${r[0]}`);
      }
      expect(n).toBe(5000);
    } finally {
      await raw.close();
      await db.cleanup();
    }
  });
});
