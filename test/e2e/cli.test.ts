// End to end: the built binary as a subprocess against a temporary COMPANYCTL_HOME.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ADMIN_PASSWORD, BIN, bootstrapBin, freshPgDatabase, hasScript, PG_SKIP_REASON, PG_URL, runBin, runBinAsync, tempHome } from '../helpers.js';

describe('companyctl binary on the SQLite default', () => {
  let home: ReturnType<typeof tempHome>;
  let env: Record<string, string>;
  const dbFile = () => join(home.home, 'data', 'companyctl.db');

  beforeAll(() => {
    home = tempHome();
    env = { COMPANYCTL_HOME: home.home };
    bootstrapBin(env);
  });
  /** The login token, for runs against copies of the store (another path, same keys). */
  const tokenEnv = () => ({ ...env, COMPANYCTL_TOKEN: runBin(['auth', 'token'], { env }).stdout.trim() });
  afterAll(() => home.cleanup());

  it('--help and --version exit 0 without a store', () => {
    const h = runBin(['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('company');
    expect(runBin(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('creates the store 0600 in a 0700 folder, in WAL mode', () => {
    expect(statSync(dbFile()).mode & 0o777).toBe(0o600);
    expect(statSync(join(home.home, 'data')).mode & 0o777).toBe(0o700);
    const db = new Database(dbFile(), { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('create prints the company on stdout and the notice on stderr', () => {
    const r = runBin(['company', 'create', '--name', 'Acme', '--domain', 'acme.de', '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'Acme', domain: 'acme.de' });
    expect(r.stderr).toContain('created company');
  });

  it('concurrent writers all succeed (the busy store waits, it does not fail)', async () => {
    const runs = await Promise.all(
      Array.from({ length: 8 }, (_, i) => runBinAsync(['company', 'create', '--name', `Parallel ${i}`, '--domain', `parallel-${i}.com`, '--json'], { env })),
    );
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const ids = runs.map((r) => JSON.parse(r.stdout).id);
    expect(new Set(ids).size).toBe(8);
  });

  it('a cache hit does not open the store; --fresh does', () => {
    expect(runBin(['company', 'get', 'acme.de', '--json'], { env }).code).toBe(0); // fills the cache
    const away = `${dbFile()}.away`;
    renameSync(dbFile(), away);
    try {
      const hit = runBin(['company', 'get', 'acme.de', '--json'], { env });
      expect(hit.code, hit.stderr).toBe(0);
      expect(JSON.parse(hit.stdout).domain).toBe('acme.de');
      const fresh = runBin(['company', 'get', 'acme.de', '--json', '--fresh'], { env });
      expect(fresh.code).toBe(1);
      expect(JSON.parse(fresh.stderr).error.code).toBe('COMPANYCTL_STORE_NOT_INITIALISED');
    } finally {
      renameSync(away, dbFile());
    }
    const cacheDir = join(home.home, 'cache');
    expect(statSync(cacheDir).mode & 0o777).toBe(0o700);
  });

  it('an update invalidates the cached copy for the next process', () => {
    expect(runBin(['company', 'update', 'acme.de', '--employees', '99'], { env }).code).toBe(0);
    expect(JSON.parse(runBin(['company', 'get', 'acme.de', '--json'], { env }).stdout).employees).toBe(99);
  });

  it('an admin can run db migrate on a store with migrations pending (an upgrade)', () => {
    const db = new Database(dbFile());
    db.exec(`delete from companyctl_migrations where name = '0010-import-input-prefix'`);
    db.exec('alter table import_job drop column input_prefix_bytes');
    db.exec('alter table import_job drop column input_prefix_sha256');
    db.close();
    const stale = runBin(['company', 'list', '--json'], { env });
    expect(JSON.parse(stale.stderr).error.code).toBe('COMPANYCTL_SCHEMA_OUTDATED');
    const m = runBin(['db', 'migrate', '--json'], { env });
    expect(m.code, m.stderr).toBe(0);
    expect(JSON.parse(m.stdout).migrationsApplied).toEqual(['0010-import-input-prefix']);
    expect(runBin(['company', 'list', '--json'], { env }).code).toBe(0);
  });

  it('refuses a store whose schema is newer than the code', () => {
    const copy = join(home.home, 'newer.db');
    const src = new Database(dbFile());
    src.exec(`vacuum into '${copy}'`);
    src.close();
    const db = new Database(copy);
    db.prepare(`insert into companyctl_migrations (name, executed_at) values ('9999-from-the-future', '2030-01-01')`).run();
    db.close();
    const r = runBin(['company', 'list', '--json', '--db', copy], { env: tokenEnv() });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr).error.code).toBe('COMPANYCTL_SCHEMA_TOO_NEW');
    const s = runBin(['db', 'status', '--json', '--db', copy], { env });
    expect(s.code).toBe(1);
    expect(JSON.parse(s.stdout)).toMatchObject({ state: 'newer-than-code', unknown: ['9999-from-the-future'] });
    expect(runBin(['db', 'migrate', '--db', copy], { env: tokenEnv() }).code).toBe(1);
  });

  it('an internal error is one short line; the stack only with --debug', () => {
    const copy = join(home.home, 'broken.db');
    const src = new Database(dbFile());
    src.exec(`vacuum into '${copy}'`);
    src.close();
    const db = new Database(copy);
    db.exec('drop table outbox_event');
    db.close();
    const r = runBin(['company', 'create', '--name', 'X', '--db', copy], { env: tokenEnv() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^companyctl: internal error: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // The failing statement and its values (company data, or a password hash elsewhere) stay out.
    expect(r.stderr).not.toMatch(/insert into|values \(/i);
    const d = runBin(['company', 'create', '--name', 'X', '--db', copy, '--debug'], { env: tokenEnv() });
    expect(d.stderr).toMatch(/\n\s+at /);
    // The failed transaction left no company behind.
    const check = new Database(copy, { readonly: true });
    expect(check.prepare(`select count(*) as n from company where name = 'X'`).get()).toEqual({ n: 0 });
    check.close();
  });

  it('a revoked token is refused by the very next process (its cached session state is dropped)', () => {
    const token = runBin(['token', 'create', '--name', 'e2e-revoke', '--role', 'viewer'], { env }).stdout.trim();
    const withToken = { ...env, COMPANYCTL_TOKEN: token };
    expect(runBin(['company', 'list'], { env: withToken }).code).toBe(0); // caches the live session
    expect(runBin(['token', 'revoke', 'e2e-revoke'], { env }).code).toBe(0);
    const r = runBin(['company', 'list', '--json'], { env: withToken });
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stderr).error.code).toBe('COMPANYCTL_AUTH_REVOKED');
  });

  it('a URL password holding @ never reaches stderr or app.log, not even in part', () => {
    const r = runBin(['db', 'status', '--json', '--db', 'postgresql://postgres:Abc@Def@Ghi@127.0.0.1:1/x'], { env });
    expect(JSON.parse(r.stderr).error.code).toBe('COMPANYCTL_STORE_UNAVAILABLE');
    const log = readFileSync(join(home.home, 'state', 'app.log'), 'utf8');
    expect(log).toContain('postgresql://postgres:***@127.0.0.1:1/x');
    for (const piece of ['Abc', 'Def', 'Ghi']) expect(r.stderr + r.stdout + log).not.toContain(piece);
  });

  it('data written to a full disk is a COMPANYCTL_DISK_FULL failure, not a silent exit 0', () => {
    const full = openSync('/dev/full', 'w');
    try {
      const r = spawnSync(process.execPath, [BIN, 'company', 'list', '--json'], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ...env },
        stdio: ['ignore', full, 'pipe'],
        encoding: 'utf8',
      });
      expect(r.status).toBe(1);
      const { error } = JSON.parse(r.stderr);
      expect(error.code).toBe('COMPANYCTL_DISK_FULL');
      expect(error.hint).toMatch(/free some space/);
    } finally {
      closeSync(full);
    }
  });

  it('a password never appears in argv: there is no password flag', () => {
    const r = runBin(['login', '-u', 'admin', '--password', 'x'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--password'");
  });

  it('init --db in an existing folder leaves that folder\'s mode alone; the file is 0600', () => {
    const dir = join(home.home, 'shared-folder');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const r = runBin(['init', '--password-stdin', '--db', join(dir, 'x.db')], { env, input: ADMIN_PASSWORD });
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    expect(statSync(join(dir, 'x.db')).mode & 0o777).toBe(0o600);
  });

  it.skipIf(!hasScript)('on a real terminal (script(1) pty), get prints a table', () => {
    const r = spawnSync('script', ['-qec', `${process.execPath} ${BIN} company get acme.de`, '/dev/null'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, COMPANYCTL_HOME: home.home, NO_COLOR: '1', TERM: 'xterm' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^domain\s+acme\.de/m);
  });

  it('the demo runs end to end in its own throw-away home', () => {
    const r = runBin(['demo']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Acme Robotics');
    expect(r.stderr).toContain('from the file cache');
  });
});

describe.skipIf(!PG_URL)(`companyctl binary on PostgreSQL${PG_URL ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
  let home: ReturnType<typeof tempHome>;
  let pgDb: Awaited<ReturnType<typeof freshPgDatabase>>;
  let env: Record<string, string>;
  beforeAll(async () => {
    home = tempHome();
    pgDb = await freshPgDatabase();
    env = { COMPANYCTL_HOME: home.home, COMPANYCTL_DB: pgDb.url };
  });
  afterAll(async () => {
    await pgDb?.cleanup();
    home?.cleanup();
  });

  it('runs the same commands against the server', () => {
    bootstrapBin(env);
    expect(existsSync(join(home.home, 'data', 'companyctl.db'))).toBe(false);
    const c = runBin(['company', 'create', '--name', 'Acme', '--domain', 'acme.de', '--incorporation-date', '2001-02-03', '--json'], { env });
    expect(c.code, c.stderr).toBe(0);
    const g = JSON.parse(runBin(['company', 'get', 'acme.de', '--json', '--fresh'], { env }).stdout);
    expect(g).toMatchObject({ name: 'Acme', incorporationDate: '2001-02-03' });
    expect(g.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(runBin(['company', 'list', '--ndjson'], { env }).stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(runBin(['db', 'status', '--json'], { env }).stdout)).toMatchObject({ dialect: 'postgresql', state: 'ready' });
  });

  it('never prints the password of the connection URL', () => {
    const url = new URL(pgDb.url);
    url.password = 's3cret-pw';
    url.port = '1';
    const r = runBin(['db', 'status', '--json', '--db', url.href], { env: { COMPANYCTL_HOME: home.home } });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr).error.code).toBe('COMPANYCTL_STORE_UNAVAILABLE');
    expect(r.stderr + r.stdout).not.toContain('s3cret-pw');
    const l = runBin(['company', 'list', '--json', '--db', url.href], { env: { COMPANYCTL_HOME: home.home } });
    expect(l.stderr + l.stdout).not.toContain('s3cret-pw');
  });
});
