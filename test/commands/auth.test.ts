// Auth commands in-process through runCli, and the role table applied to every command.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram, commandPath, COMMAND_ROLES } from '../../src/cli.js';
import { ADMIN_PASSWORD, runInProcess, tempHome } from '../helpers.js';

let home: ReturnType<typeof tempHome>;

const cli = (args: string[], opts: { tty?: boolean; stdin?: string; env?: Record<string, string> } = {}) =>
  runInProcess(args, { COMPANYCTL_HOME: home.home, ...opts.env }, opts);

async function tokenFor(role: 'viewer' | 'editor' | 'admin'): Promise<Record<string, string>> {
  const r = await cli(['token', 'create', '--name', `t-${role}-${Math.random().toString(36).slice(2, 6)}`, '--role', role]);
  expect(r.code, r.stderr).toBe(0);
  return { COMPANYCTL_TOKEN: r.stdout.trim() };
}

beforeEach(async () => {
  home = tempHome();
  expect((await cli(['init', '--password-stdin'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
  expect((await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
});
afterEach(() => home.cleanup());

describe('the role table', () => {
  it('declares a role for every command', () => {
    const leaves: string[] = [];
    const walk = (c: Command) => (c.commands.length === 0 ? leaves.push(commandPath(c)) : c.commands.forEach(walk));
    buildProgram(async () => undefined).commands.forEach(walk);
    expect(leaves.length).toBeGreaterThan(20);
    expect(leaves.filter((l) => !(l in COMMAND_ROLES))).toEqual([]);
  });

  it('a viewer reads but cannot write; an editor writes but cannot administer (exit 4)', async () => {
    const viewer = await tokenFor('viewer');
    const editor = await tokenFor('editor');
    expect((await cli(['company', 'create', '--name', 'Acme'])).code).toBe(0);
    const deny = async (args: string[], env: Record<string, string>) => {
      const r = await cli([...args, '--json'], { env, stdin: ADMIN_PASSWORD });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(4);
      expect(JSON.parse(r.stderr).error.code).toBe('COMPANYCTL_AUTH_FORBIDDEN');
    };
    const allow = async (args: string[], env: Record<string, string>) => {
      const r = await cli(args, { env });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    };
    await allow(['company', 'list'], viewer);
    await allow(['company', 'get', '1'], viewer);
    await allow(['cache', 'stats'], viewer);
    await allow(['whoami'], viewer);
    await deny(['company', 'create', '--name', 'X'], viewer);
    await deny(['company', 'update', '1', '--employees', '3'], viewer);
    await deny(['company', 'delete', '1'], viewer);
    await deny(['company', 'restore', '1'], viewer);
    await allow(['company', 'update', '1', '--employees', '3'], editor);
    await deny(['company', 'delete', '1', '--hard', '--yes'], editor);
    for (const env of [viewer, editor]) {
      await deny(['db', 'migrate'], env);
      await deny(['user', 'list'], env);
      await deny(['user', 'add', 'zed', '--password-stdin'], env);
      await deny(['user', 'disable', 'admin'], env);
      await deny(['user', 'set-role', 'admin', 'viewer'], env);
      await deny(['user', 'passwd', 'admin', '--password-stdin'], env);
      await deny(['token', 'create', '--name', 'x'], env);
      await deny(['token', 'list'], env);
      await deny(['token', 'revoke', 'x'], env);
    }
    await allow(['company', 'delete', '1', '--hard', '--yes'], {});
  });

  it('without a login every guarded command exits 4 with COMPANYCTL_AUTH_REQUIRED', async () => {
    expect((await cli(['logout'])).code).toBe(0);
    for (const args of [['company', 'list'], ['company', 'get', '1'], ['whoami'], ['user', 'list'], ['cache', 'stats']]) {
      const r = await cli([...args, '--json']);
      expect(r.code).toBe(4);
      expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'COMPANYCTL_AUTH_REQUIRED', hint: expect.stringContaining('companyctl login') });
    }
  });
});

describe('login, whoami, auth status, auth token, logout', () => {
  it('login without a terminal and without --password-stdin names the flag (exit 2)', async () => {
    const r = await cli(['login', '-u', 'admin', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'COMPANYCTL_MISSING_FIELD', field: '--password-stdin' });
  });

  it('a wrong password exits 4 with a generic message', async () => {
    const r = await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage', '--json'], { stdin: 'wrong-password-123' });
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'COMPANYCTL_AUTH_FAILED', message: 'invalid username or password' });
  });

  it('without a keychain, login fails closed and leaves no live session', async () => {
    const before = JSON.parse((await cli(['token', 'list', '--all', '--json'])).stdout).length;
    const r = await cli(['login', '-u', 'admin', '--password-stdin', '--json'], { stdin: ADMIN_PASSWORD, env: { DBUS_SESSION_BUS_ADDRESS: '' } });
    if (process.env.DBUS_SESSION_BUS_ADDRESS) return; // a real keychain is reachable here: covered by the keychain e2e test
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'COMPANYCTL_KEYCHAIN_UNAVAILABLE', hint: expect.stringContaining('--insecure-storage') });
    expect(JSON.parse((await cli(['token', 'list', '--all', '--json'])).stdout).length).toBe(before);
  });

  it('--insecure-storage warns with the path, even with --quiet, and writes a 0600 file', async () => {
    const r = await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage', '--quiet'], { stdin: ADMIN_PASSWORD });
    expect(r.code).toBe(0);
    const dir = join(home.home, 'config', 'credentials');
    const file = join(dir, readdirSync(dir)[0]!);
    expect(r.stderr).toContain(`warning: the token is stored in a plain file, ${file}`);
  });

  it('a token file others can read is refused (exit 4)', async () => {
    const dir = join(home.home, 'config', 'credentials');
    chmodSync(join(dir, readdirSync(dir)[0]!), 0o644);
    const r = await cli(['whoami', '--json']);
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stderr).error.code).toBe('COMPANYCTL_AUTH_INSECURE_FILE');
  });

  it('whoami and auth status: plain, table and JSON; the token is masked', async () => {
    expect((await cli(['whoami'])).stdout).toBe('admin\tadmin\n');
    expect(JSON.parse((await cli(['whoami', '--json'])).stdout)).toMatchObject({ username: 'admin', role: 'admin', kind: 'login' });
    const raw = (await cli(['auth', 'token'])).stdout.trim();
    expect(raw.split('.')).toHaveLength(3);
    const status = JSON.parse((await cli(['auth', 'status', '--json'])).stdout);
    expect(status).toMatchObject({ username: 'admin', role: 'admin', profile: 'default', token: `****${raw.slice(-6)}` });
    expect(status.storedIn).toContain('credentials');
    expect(JSON.stringify(status)).not.toContain(raw);
    const tty = await cli(['auth', 'status'], { tty: true });
    expect(tty.stdout).toMatch(/^username\s+admin/m);
    expect(tty.stdout).not.toContain(raw);
  });

  it('COMPANYCTL_TOKEN wins over the stored login', async () => {
    const viewer = await tokenFor('viewer');
    expect(JSON.parse((await cli(['whoami', '--json'], { env: viewer })).stdout)).toMatchObject({ role: 'viewer', kind: 'token' });
  });

  it('a set but empty or blank COMPANYCTL_TOKEN is an auth error, never the stored login', async () => {
    for (const value of ['', '   ', '\n']) {
      for (const args of [['whoami', '--json'], ['company', 'create', '--name', 'Sneaky', '--json']]) {
        const r = await cli(args, { env: { COMPANYCTL_TOKEN: value } });
        expect(r.code, `${JSON.stringify(value)} ${args[0]}: ${r.stderr}`).toBe(4);
        expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'COMPANYCTL_AUTH_INVALID', field: 'COMPANYCTL_TOKEN' });
      }
    }
    expect(JSON.parse((await cli(['company', 'list', '--json'])).stdout).items).toEqual([]);
  });

  it('profiles keep logins apart; a profile is a plain name, never a path', async () => {
    const r = await cli(['whoami', '--profile', 'other', '--json']);
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stderr).error.message).toContain('profile other');
    const bad = await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage', '--profile', '../../escape', '--json'], { stdin: ADMIN_PASSWORD });
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stderr).error.field).toBe('--profile');
  });

  it('a store re-created at the same path accepts its new logins despite cached keys', async () => {
    const { rmSync } = await import('node:fs');
    expect((await cli(['whoami'])).code).toBe(0); // caches this store's public key
    for (const f of ['companyctl.db', 'companyctl.db-wal', 'companyctl.db-shm']) rmSync(join(home.home, 'data', f), { force: true });
    expect((await cli(['init', '--password-stdin', '--no-cache'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
    const login = await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], { stdin: ADMIN_PASSWORD });
    expect(login.code).toBe(0);
    const who = await cli(['whoami', '--json']);
    expect(who.code, who.stderr).toBe(0);
  });

  it('logout works even when the token file has become readable by others', async () => {
    const dir = join(home.home, 'config', 'credentials');
    chmodSync(join(dir, readdirSync(dir)[0]!), 0o644);
    const r = await cli(['logout', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ revoked: true, removed: true });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('logout revokes the session: the old token stops working', async () => {
    const raw = (await cli(['auth', 'token'])).stdout.trim();
    expect(JSON.parse((await cli(['logout', '--json'])).stdout)).toEqual({ revoked: true, removed: true });
    const r = await cli(['whoami', '--json'], { env: { COMPANYCTL_TOKEN: raw } });
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stderr).error.code).toBe('COMPANYCTL_AUTH_REVOKED');
  });
});

describe('users and tokens', () => {
  it('user add, list, set-role, disable, enable, passwd', async () => {
    expect((await cli(['user', 'add', 'bob', '--role', 'editor', '--password-stdin'], { stdin: 'long-secret-passphrase' })).code).toBe(0);
    const list = JSON.parse((await cli(['user', 'list', '--json'])).stdout);
    expect(list.map((u: { username: string; role: string }) => `${u.username}:${u.role}`)).toEqual(['admin:admin', 'bob:editor']);
    expect((await cli(['user', 'list'])).stdout).toMatch(/^id\tusername\trole\tstate\tcreatedAt\n1\tadmin\tadmin\tactive\t/);
    expect((await cli(['user', 'set-role', 'bob', 'viewer'])).code).toBe(0);
    expect((await cli(['user', 'disable', 'bob', '--json'])).stdout).toContain('"disabled":true');
    const denied = await cli(['login', '-u', 'bob', '--password-stdin', '--insecure-storage', '--profile', 'bob', '--json'], { stdin: 'long-secret-passphrase' });
    expect(denied.code).toBe(4);
    expect((await cli(['user', 'enable', 'bob'])).code).toBe(0);
    expect((await cli(['login', '-u', 'bob', '--password-stdin', '--insecure-storage', '--profile', 'bob'], { stdin: 'long-secret-passphrase' })).code).toBe(0);
    expect(JSON.parse((await cli(['whoami', '--profile', 'bob', '--json'])).stdout)).toMatchObject({ username: 'bob', role: 'viewer' });
    // bob changes his own password: he must know the current one, and his session ends.
    const wrong = await cli(['user', 'passwd', '--profile', 'bob', '--password-stdin', '--json'], { stdin: 'not-the-current-one\na-new-long-passphrase\n' });
    expect(wrong.code).toBe(4);
    expect((await cli(['user', 'passwd', '--profile', 'bob', '--password-stdin'], { stdin: 'a-new-long-passphrase' })).code).toBe(2); // one line: which is which?
    expect((await cli(['user', 'passwd', '--profile', 'bob', '--password-stdin'], { stdin: 'long-secret-passphrase\na-new-long-passphrase\n' })).code).toBe(0);
    expect((await cli(['whoami', '--profile', 'bob'])).code).toBe(4);
    expect((await cli(['user', 'set-role', 'admin', 'viewer'])).code).toBe(2); // the last admin
  });

  it('token create prints the token once; list shows no values; revoke stops it', async () => {
    const created = await cli(['token', 'create', '--name', 'nightly', '--role', 'editor', '--expires', '30d']);
    const token = created.stdout.trim();
    expect(created.stderr).toContain('shown once');
    const list = await cli(['token', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ name: 'nightly', role: 'editor', state: 'live', createdBy: 'admin' })]);
    expect(list.stdout).not.toContain(token);
    expect((await cli(['token', 'list'], { tty: true })).stdout).toMatch(/nightly\s+editor/);
    expect((await cli(['token', 'create', '--name', 'bad', '--expires', 'forever', '--json'])).code).toBe(2);
    expect((await cli(['token', 'revoke', 'nightly'])).code).toBe(0);
    expect((await cli(['whoami'], { env: { COMPANYCTL_TOKEN: token } })).code).toBe(4);
  });
});
