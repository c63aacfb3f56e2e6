// Every security-relevant action lands in the audit trail as an event with an actor, looked up
// by its type (never by event id), and never with a password, token or secret in it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, runInProcess, tempHome } from '../helpers.js';

let home: ReturnType<typeof tempHome>;
const cli = (args: string[], opts: { tty?: boolean; stdin?: string; env?: Record<string, string> } = {}) =>
  runInProcess(args, { COMPANYCTL_HOME: home.home, ...opts.env }, opts);

interface Line {
  actor: string;
  role: string | null;
  action: string;
  target: string | null;
  command: string | null;
  data?: Record<string, unknown>;
}

async function trail(action: string): Promise<Line[]> {
  const r = await cli(['audit', '--action', action, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).items;
}
const fileText = () => readFileSync(join(home.home, 'state', 'audit.log'), 'utf8');

beforeEach(async () => {
  home = tempHome();
  expect((await cli(['init', '--password-stdin'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
  expect((await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
});
afterEach(() => home.cleanup());

describe('security events in the audit trail', () => {
  it('logins (success, failure with the typed name, lockout) and logout; no password anywhere', async () => {
    expect(await trail('auth.login')).toEqual([expect.objectContaining({ actor: 'admin', target: 'user:admin', data: expect.objectContaining({ username: 'admin', role: 'admin' }) })]);
    const wrong = 'wrong-password-123';
    for (let i = 0; i < 6; i++) {
      expect((await cli(['login', '-u', 'Mallory', '--password-stdin', '--insecure-storage', '--profile', 'm'], { stdin: wrong })).code).toBe(4);
    }
    expect((await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage', '--profile', 'x'], { stdin: wrong })).code).toBe(4);
    const failed = await trail('auth.login_failed');
    expect(failed).toHaveLength(7);
    expect(failed[0]).toMatchObject({ actor: expect.stringMatching(/^system:/), target: 'user:mallory', data: { username: 'mallory', reason: 'unknown_user' } });
    expect(failed.at(-2)).toMatchObject({ data: { username: 'mallory', reason: 'locked' } });
    expect(failed.at(-1)).toMatchObject({ data: { username: 'admin', reason: 'wrong_password' } });
    const lockout = await trail('auth.lockout');
    expect(lockout).toEqual([expect.objectContaining({ target: 'user:mallory', data: expect.objectContaining({ username: 'mallory', lockedUntil: expect.any(String) }) })]);
    expect((await cli(['logout'])).code).toBe(0);
    // Logged out: read the trail as a token holder (an admin token made before).
    expect((await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
    expect(await trail('auth.logout')).toEqual([expect.objectContaining({ actor: 'admin', target: 'user:admin' })]);
    expect(fileText()).not.toContain(wrong);
    expect(fileText()).not.toContain(ADMIN_PASSWORD);
    expect((await cli(['audit', 'verify'])).code).toBe(0);
  });

  it('user add, set-role, disable, enable and passwd; token create and revoke (never the token)', async () => {
    expect((await cli(['user', 'add', 'bob', '--role', 'editor', '--password-stdin'], { stdin: 'long-secret-passphrase' })).code).toBe(0);
    expect((await cli(['user', 'set-role', 'bob', 'viewer'])).code).toBe(0);
    expect((await cli(['user', 'disable', 'bob'])).code).toBe(0);
    expect((await cli(['user', 'enable', 'bob'])).code).toBe(0);
    expect((await cli(['user', 'passwd', 'bob', '--password-stdin'], { stdin: 'another-long-passphrase' })).code).toBe(0);
    const created = await cli(['token', 'create', '--name', 'nightly', '--role', 'editor', '--expires', '30d']);
    const token = created.stdout.trim();
    expect((await cli(['token', 'revoke', 'nightly'])).code).toBe(0);

    const user = await trail('user.*');
    expect(user.map((l) => l.action)).toEqual(['user.added', 'user.added', 'user.role_changed', 'user.disabled', 'user.enabled', 'user.password_changed']);
    const bob = user.filter((l) => l.target === 'user:bob');
    expect(bob[0]).toMatchObject({ actor: 'admin', role: 'admin', data: { username: 'bob', role: 'editor' }, command: expect.stringContaining('user add bob') });
    expect(bob[1]).toMatchObject({ data: { from: 'editor', to: 'viewer' } });
    expect(bob[2]).toMatchObject({ data: { revokedSessions: 0 } });
    expect(bob[4]).toMatchObject({ action: 'user.password_changed' });
    const tokens = await trail('token.*');
    expect(tokens).toEqual([
      expect.objectContaining({ action: 'token.created', actor: 'admin', target: 'token:nightly', data: expect.objectContaining({ name: 'nightly', role: 'editor', expiresAt: expect.any(String) }) }),
      expect.objectContaining({ action: 'token.revoked', target: 'token:nightly', data: expect.objectContaining({ name: 'nightly', role: 'editor' }) }),
    ]);
    const text = fileText();
    for (const secret of [token, 'long-secret-passphrase', 'another-long-passphrase']) expect(text).not.toContain(secret);
  });

  it('webhook add and remove (URL, never the secret); db migrate; cache clear; refusals (exit 4)', async () => {
    const secret = 'a-webhook-signing-secret-0123456789';
    const added = await cli(['webhook', 'add', 'https://hooks.example.com/x', '--events', 'company.*', '--secret-stdin', '--json'], { stdin: secret });
    expect(added.code, added.stderr).toBe(0);
    const id = JSON.parse(added.stdout).id;
    expect((await cli(['webhook', 'remove', String(id)])).code).toBe(0);
    expect(await trail('webhook.*')).toEqual([
      expect.objectContaining({ action: 'webhook.added', actor: 'admin', target: `webhook:${id}`, data: expect.objectContaining({ url: 'https://hooks.example.com/x', events: ['company.*'] }) }),
      expect.objectContaining({ action: 'webhook.removed', target: `webhook:${id}`, data: expect.objectContaining({ url: 'https://hooks.example.com/x' }) }),
    ]);
    expect(fileText()).not.toContain(secret);

    expect((await cli(['db', 'migrate'])).code).toBe(0);
    expect(await trail('db.migrated')).toEqual([expect.objectContaining({ actor: 'admin', data: { applied: [] } })]);
    expect((await cli(['cache', 'clear'])).code).toBe(0);
    expect(await trail('cache.cleared')).toEqual([expect.objectContaining({ actor: 'admin', data: { removed: expect.any(Number) } })]);

    const viewer = (await cli(['token', 'create', '--name', 'ro', '--role', 'viewer'])).stdout.trim();
    const denied = await cli(['user', 'add', 'zed', '--password-stdin', '--json'], { env: { COMPANYCTL_TOKEN: viewer }, stdin: 'zed-long-passphrase' });
    expect(denied.code).toBe(4);
    expect(await trail('auth.forbidden')).toEqual([
      expect.objectContaining({ actor: 'admin (token ro)', role: 'viewer', target: 'command:user add', data: expect.objectContaining({ command: 'user add', reason: expect.stringContaining('admin role') }) }),
    ]);
    expect((await cli(['audit', 'verify'])).code).toBe(0);
  });
});
