// db backup while a writer writes (a consistent, 0600, checked copy), db restore (refuses a live
// store without --force and a newer schema; the audit trail verifies afterwards), events prune.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ROOT, runBinAsync, runInProcess, tempHome } from '../helpers.js';

const Database = createRequire(import.meta.url)(join(ROOT, 'node_modules', 'better-sqlite3')) as typeof import('better-sqlite3');

let home: ReturnType<typeof tempHome>;
const store = () => join(home.home, 'data', 'companyctl.db');
const cli = (args: string[], opts: { tty?: boolean; stdin?: string; env?: Record<string, string> } = {}) =>
  runInProcess(args, { COMPANYCTL_HOME: home.home, ...opts.env }, opts);
const lastError = (stderr: string) => JSON.parse(stderr.trim().split('\n').at(-1)!).error;

beforeEach(async () => {
  home = tempHome();
  expect((await cli(['init', '--password-stdin'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
  expect((await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
  expect((await cli(['company', 'create', '--name', 'Acme', '--domain', 'acme.de'])).code).toBe(0);
});
afterEach(() => home.cleanup());

// Each transaction writes a company and its event: a consistent copy holds as many of one as of the other.
const WRITER = `
const Database = require(${JSON.stringify(join(ROOT, 'node_modules', 'better-sqlite3'))});
const db = new Database(process.argv[1]);
db.pragma('journal_mode = WAL'); db.pragma('busy_timeout = 5000');
const company = db.prepare("insert into company (name, created_at, updated_at) values (?, ?, ?)");
const event = db.prepare("insert into outbox_event (type, company_id, actor, payload, created_at, command) values ('company.created', ?, 'writer', '{}', ?, '')");
const write = db.transaction((i) => { const now = new Date().toISOString(); const id = company.run('w' + i, now, now).lastInsertRowid; event.run(id, now); });
let i = 0; process.stdout.write('ready\\n');
const loop = () => { for (let k = 0; k < 20; k++) write(i++); setImmediate(loop); };
loop();`;

describe('db backup', () => {
  it('copies the store while a writer writes: consistent, 0600, checked; plain, TTY and --json', async () => {
    const writer = spawn(process.execPath, ['-e', WRITER, store()], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => writer.stdout.once('data', () => resolve()));
      const file = join(home.home, 'backups', 'one.db');
      const r = await runBinAsync(['db', 'backup', file, '--json'], { env: { COMPANYCTL_HOME: home.home } });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ file, mode: '0600', migrations: expect.any(Number) });
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const copy = new Database(file, { readonly: true });
      try {
        const n = (sql: string) => Number((copy.prepare(sql).get() as { n: number }).n);
        const companies = n(`select count(*) as n from company where name like 'w%'`);
        expect(companies).toBeGreaterThan(0);
        expect(n(`select count(*) as n from outbox_event where actor = 'writer'`)).toBe(companies);
        expect(copy.pragma('quick_check', { simple: true })).toBe('ok');
      } finally {
        copy.close();
      }
      // The writer went on writing meanwhile.
      const live = new Database(store(), { readonly: true });
      const later = Number((live.prepare(`select count(*) as n from company where name like 'w%'`).get() as { n: number }).n);
      live.close();
      expect(later).toBeGreaterThan(0);
    } finally {
      writer.kill('SIGKILL');
    }
    expect((await cli(['db', 'backup', join(home.home, 'two.db')])).stdout).toMatch(/^file\t/m);
    expect((await cli(['db', 'backup', join(home.home, 'three.db')], { tty: true })).stdout).toMatch(/^file\s+\S/m);
    const again = await cli(['db', 'backup', join(home.home, 'two.db'), '--json']);
    expect(again.code).toBe(2);
    expect(lastError(again.stderr)).toMatchObject({ code: 'COMPANYCTL_USAGE', field: 'file' });
    // Audited (the writer's thousands of events queue before them, so read the outbox itself).
    const db = new Database(store(), { readonly: true });
    const events = db.prepare(`select actor, payload from outbox_event where type = 'db.backed_up' order by id`).all() as { actor: string; payload: string }[];
    db.close();
    expect(events).toHaveLength(3);
    expect(events[0]).toMatchObject({ actor: 'admin' });
    expect(JSON.parse(events[0]!.payload)).toMatchObject({ file: join(home.home, 'backups', 'one.db') });
  });
});

describe('db restore', () => {
  it('refuses a live store without --force, then restores it; the audit trail verifies', async () => {
    const file = join(home.home, 'before.db');
    expect((await cli(['db', 'backup', file])).code).toBe(0);
    expect((await cli(['company', 'create', '--name', 'Later', '--domain', 'later.io'])).code).toBe(0);
    const refused = await cli(['db', 'restore', file, '--json']);
    expect(refused.code).toBe(1);
    expect(lastError(refused.stderr).code).toBe('COMPANYCTL_STORE_EXISTS');
    const r = await cli(['db', 'restore', file, '--force', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ replaced: true, companies: 1 });
    expect((await cli(['company', 'get', 'later.io'])).code).toBe(1);
    expect((await cli(['company', 'get', 'acme.de', '--json'])).code).toBe(0);
    const verify = await cli(['audit', 'verify', '--json']);
    expect(verify.code, verify.stderr).toBe(0);
    expect((await cli(['db', 'restore', file, '--force'], { tty: true })).stdout).toMatch(/^replaced\s+true$/m);
    expect(JSON.parse((await cli(['audit', '--action', 'db.restored', '--json'])).stdout).items).toEqual([expect.objectContaining({ actor: 'admin' })]);
  });

  it('restores onto a machine without a store, without a login; refuses a newer schema and a file that is no store', async () => {
    const file = join(home.home, 'b.db');
    expect((await cli(['db', 'backup', file])).code).toBe(0);
    const fresh = tempHome();
    try {
      const r = await runInProcess(['db', 'restore', file], { COMPANYCTL_HOME: fresh.home });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^replaced\tfalse$/m);
      expect(statSync(join(fresh.home, 'data', 'companyctl.db')).mode & 0o777).toBe(0o600);
      expect((await runInProcess(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], { COMPANYCTL_HOME: fresh.home }, { stdin: ADMIN_PASSWORD })).code).toBe(0);
      expect((await runInProcess(['company', 'get', 'acme.de'], { COMPANYCTL_HOME: fresh.home })).code).toBe(0);
    } finally {
      fresh.cleanup();
    }
    const newer = new Database(file);
    newer.prepare(`insert into companyctl_migrations (name, executed_at) values ('9999-future', current_timestamp)`).run();
    newer.close();
    const empty = tempHome();
    try {
      const r = await runInProcess(['db', 'restore', file, '--json'], { COMPANYCTL_HOME: empty.home });
      expect(r.code).toBe(1);
      expect(lastError(r.stderr).code).toBe('COMPANYCTL_SCHEMA_TOO_NEW');
      expect(existsSync(join(empty.home, 'data', 'companyctl.db'))).toBe(false);
      const notStore = await runInProcess(['db', 'restore', join(ROOT, 'package.json'), '--json'], { COMPANYCTL_HOME: empty.home });
      expect(notStore.code).toBe(2);
      expect(lastError(notStore.stderr)).toMatchObject({ code: 'COMPANYCTL_INVALID_INPUT', field: 'file' });
    } finally {
      empty.cleanup();
    }
  });
});

describe('events prune', () => {
  it('removes delivered events older than the age, keeps newer and undelivered ones and the audit trail', async () => {
    const db = new Database(store());
    db.prepare(`update outbox_event set created_at = '2020-01-01T00:00:00.000Z'`).run();
    const total = Number((db.prepare('select count(*) as n from outbox_event').get() as { n: number }).n);
    db.close();
    // A new event: kept.
    expect((await cli(['company', 'create', '--name', 'Fresh'])).code).toBe(0);
    const r = await cli(['events', 'prune', '--older-than', '30d', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ removed: total });
    const left = JSON.parse((await cli(['events', 'list', '--json'])).stdout).items;
    expect(left.every((e: { createdAt: string }) => e.createdAt > '2021')).toBe(true);
    expect(left.length).toBeGreaterThan(0);
    expect(JSON.parse((await cli(['audit', '--action', 'company.created', '--json'])).stdout).items).toHaveLength(2);
    expect((await cli(['audit', 'verify'])).code).toBe(0);
    expect((await cli(['events', 'prune', '--older-than', '30d'])).stdout).toMatch(/^removed\t0$/m);
    expect((await cli(['events', 'prune', '--older-than', '30d'], { tty: true })).stdout).toMatch(/^removed\s+0$/m);
    const bad = await cli(['events', 'prune', '--older-than', 'a while', '--json']);
    expect(bad.code).toBe(2);
    expect(lastError(bad.stderr)).toMatchObject({ code: 'COMPANYCTL_USAGE', field: '--older-than' });
  });
});
