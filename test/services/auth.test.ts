// The auth service against a real store (SQLite; PostgreSQL when COMPANYCTL_TEST_PG_URL is set).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT, decodeJwt, importPKCS8 } from 'jose';
import { CompanyctlError } from '../../src/errors.js';
import { FileCache } from '../../src/infra/cache.js';
import { resolveStoreLocation, type StoreLocation } from '../../src/infra/db/location.js';
import { migrateStore, openStore, type Store } from '../../src/infra/db/store.js';
import * as auth from '../../src/services/auth.js';
import { freshPgDatabase, PG_SKIP_REASON, PG_URL, tempHome } from '../helpers.js';

const PW = 'a-long-enough-password';

for (const dialect of [{ name: 'sqlite', enabled: true }, { name: 'postgresql', enabled: !!PG_URL }] as const) {
  describe.skipIf(!dialect.enabled)(`auth service on ${dialect.name}${dialect.enabled ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
    let home: ReturnType<typeof tempHome>;
    let pgDb: Awaited<ReturnType<typeof freshPgDatabase>> | undefined;
    let loc: StoreLocation;
    let store: Store;
    let clock = new Date('2026-11-25T10:00:00Z');
    const deps = (cacheDir = 'cache'): auth.AuthDeps => ({
      store: async () => store,
      cache: new FileCache(join(home.home, cacheDir), loc.key),
      now: () => clock,
      sessionCacheSeconds: 30,
    });
    const code = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (e) {
        expect(e).toBeInstanceOf(CompanyctlError);
        return (e as CompanyctlError).code;
      }
      throw new Error('expected an error');
    };

    beforeAll(async () => {
      home = tempHome();
      pgDb = dialect.name === 'postgresql' ? await freshPgDatabase() : undefined;
      loc = resolveStoreLocation(pgDb?.url, join(home.home, 'store.db'));
      await migrateStore(loc);
      store = await openStore(loc);
      await auth.addUser(deps(), 'alice', PW, 'admin');
      await auth.addUser(deps(), 'bob', PW, 'editor');
    });
    afterAll(async () => {
      await store?.close();
      await pgDb?.cleanup();
      home?.cleanup();
    });

    it('stores argon2id PHC hashes with at least OWASP parameters', async () => {
      const rows = await store.read.all<{ password_hash: string }>(`select password_hash from app_user where username = 'alice'`);
      const m = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(rows[0]!.password_hash);
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThanOrEqual(19_456);
      expect(Number(m![2])).toBeGreaterThanOrEqual(2);
      expect(Number(m![3])).toBe(1);
    });

    it('refuses weak passwords and duplicate users', async () => {
      expect(await code(auth.addUser(deps(), 'carol', 'short', 'viewer'))).toBe('COMPANYCTL_WEAK_PASSWORD');
      expect(await code(auth.addUser(deps(), 'alice', PW, 'viewer'))).toBe('COMPANYCTL_USER_EXISTS');
    });

    it('logs in and authenticates with the claims it needs', async () => {
      const s = await auth.login(deps(), 'Alice', PW, { expiresMs: 3_600_000 });
      const claims = decodeJwt(s.token);
      expect(claims).toMatchObject({ iss: 'companyctl', role: 'admin', sid: s.sessionId, sub: expect.any(String) });
      expect(typeof claims.aud).toBe('string');
      expect(claims.exp! - claims.iat!).toBe(3600);
      const id = await auth.authenticate(deps(), s.token);
      expect(id).toMatchObject({ username: 'alice', role: 'admin', kind: 'login' });
    });

    it('gives the same answer for a wrong password and an unknown user', async () => {
      const wrong = await code(auth.login(deps(), 'alice', 'not-the-password!', { expiresMs: 60_000 }));
      const unknown = await code(auth.login(deps(), 'nobody', 'not-the-password!', { expiresMs: 60_000 }));
      expect(wrong).toBe('COMPANYCTL_AUTH_FAILED');
      expect(unknown).toBe(wrong);
    });

    it('locks a name out after 5 failures in 15 minutes, then lets it in again', async () => {
      await auth.addUser(deps(), 'dave', PW, 'viewer');
      for (let i = 0; i < 5; i++) await code(auth.login(deps(), 'dave', 'wrong-password-xx', { expiresMs: 60_000 }));
      expect(await code(auth.login(deps(), 'dave', PW, { expiresMs: 60_000 }))).toBe('COMPANYCTL_AUTH_FAILED');
      for (let i = 0; i < 6; i++) await code(auth.login(deps(), 'ghost', 'wrong-password-xx', { expiresMs: 60_000 }));
      const locked = await store.read.all(`select username from login_throttle where locked_until is not null order by username`);
      expect(locked.map((r) => (r as { username: string }).username)).toEqual(['dave', 'ghost']);
      const saved = clock;
      clock = new Date(clock.getTime() + 16 * 60_000);
      try {
        expect((await auth.login(deps(), 'dave', PW, { expiresMs: 60_000 })).username).toBe('dave');
        expect(await store.read.all(`select * from login_throttle where username = 'dave'`)).toEqual([]);
      } finally {
        clock = saved;
      }
    });

    it('throttle rows of typed names expire once their window and lock are over', async () => {
      const names = async () => (await store.read.all<{ username: string }>(`select username from login_throttle order by username`)).map((r) => r.username);
      await store.transaction((tx) => tx.em.getConnection().execute('delete from login_throttle', [], 'run', tx.em.getTransactionContext()));
      const saved = clock;
      try {
        for (const n of ['nobody-1', 'nobody-2', 'nobody-3']) await code(auth.login(deps(), n, 'wrong-password-xx', { expiresMs: 60_000 }));
        for (let i = 0; i < 6; i++) await code(auth.login(deps(), 'locked-ghost', 'wrong-password-xx', { expiresMs: 60_000 }));
        expect(await names()).toEqual(['locked-ghost', 'nobody-1', 'nobody-2', 'nobody-3']);
        // Within the window nothing goes; the lock still holds.
        clock = new Date(saved.getTime() + 14 * 60_000);
        await code(auth.login(deps(), 'nobody-4', 'wrong-password-xx', { expiresMs: 60_000 }));
        expect(await names()).toEqual(['locked-ghost', 'nobody-1', 'nobody-2', 'nobody-3', 'nobody-4']);
        // Past both, the old rows are gone at the next attempt of any name.
        clock = new Date(saved.getTime() + 16 * 60_000);
        await code(auth.login(deps(), 'nobody-5', 'wrong-password-xx', { expiresMs: 60_000 }));
        expect(await names()).toEqual(['nobody-4', 'nobody-5']);
      } finally {
        clock = saved;
      }
    });

    it('rejects tampered, unsigned, re-signed, foreign and expired tokens', async () => {
      const s = await auth.login(deps(), 'bob', PW, { expiresMs: 3_600_000 });
      const [h, p, sig] = s.token.split('.');
      const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
      const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, role: 'admin' })).toString('base64url')}.${sig}`;
      expect(await code(auth.authenticate(deps(), forged))).toBe('COMPANYCTL_AUTH_INVALID');

      const none = new UnsecuredJWT(payload).encode();
      expect(await code(auth.authenticate(deps(), none))).toBe('COMPANYCTL_AUTH_INVALID');

      // Algorithm confusion: HS256 keyed with the store's public key.
      const pub = (await store.read.all<{ value: string }>(`select value from store_meta where key = 'jwt_public_key'`))[0]!.value;
      const hs = await new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(pub));
      expect(await code(auth.authenticate(deps(), hs))).toBe('COMPANYCTL_AUTH_INVALID');

      // A well-signed token of another key (another store) with this store's audience.
      const other = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const foreignKey = await new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA' }).sign(await importPKCS8(other, 'EdDSA'));
      expect(await code(auth.authenticate(deps(), foreignKey))).toBe('COMPANYCTL_AUTH_INVALID');
      const foreignStore = await new SignJWT({ ...payload, aud: 'another-store' }).setProtectedHeader({ alg: 'EdDSA' }).sign(await importPKCS8(other, 'EdDSA'));
      expect(await code(auth.authenticate(deps(), foreignStore))).toBe('COMPANYCTL_AUTH_WRONG_STORE');

      expect(await code(auth.authenticate(deps(), 'not.a.jwt'))).toBe('COMPANYCTL_AUTH_INVALID');

      const saved = clock;
      clock = new Date(clock.getTime() + 2 * 3_600_000);
      try {
        expect(await code(auth.authenticate(deps(), s.token))).toBe('COMPANYCTL_AUTH_EXPIRED');
      } finally {
        clock = saved;
      }
    });

    it('a logout is seen at once by another process sharing this host cache', async () => {
      const s = await auth.login(deps(), 'bob', PW, { expiresMs: 3_600_000 });
      const other = deps(); // another process: its own objects, the same cache folder
      expect((await auth.authenticate(other, s.token)).username).toBe('bob'); // now cached as live
      await auth.logout(deps(), s);
      expect(await code(auth.authenticate(other, s.token))).toBe('COMPANYCTL_AUTH_REVOKED');
    });

    it('disabling a user or changing the password revokes every session; a role change applies at once', async () => {
      await auth.addUser(deps(), 'erin', PW, 'editor');
      const a = await auth.login(deps(), 'erin', PW, { expiresMs: 3_600_000 });
      const b = await auth.login(deps(), 'erin', PW, { expiresMs: 3_600_000 });
      await auth.authenticate(deps(), a.token);
      await auth.setUserRole(deps(), 'erin', 'viewer');
      expect((await auth.authenticate(deps(), a.token)).role).toBe('viewer');
      expect(await auth.setUserDisabled(deps(), 'erin', true)).toEqual({ revokedSessions: 2 });
      expect(await code(auth.authenticate(deps(), a.token))).toBe('COMPANYCTL_AUTH_REVOKED');
      expect(await code(auth.authenticate(deps(), b.token))).toBe('COMPANYCTL_AUTH_REVOKED');
      expect(await code(auth.login(deps(), 'erin', PW, { expiresMs: 60_000 }))).toBe('COMPANYCTL_AUTH_FAILED');
      await auth.setUserDisabled(deps(), 'erin', false);
      const c = await auth.login(deps(), 'erin', PW, { expiresMs: 3_600_000 });
      expect(await auth.setUserPassword(deps(), 'erin', 'another-long-password')).toEqual({ revokedSessions: 1 });
      expect(await code(auth.authenticate(deps(), c.token))).toBe('COMPANYCTL_AUTH_REVOKED');
    });

    it('API tokens: named, role-capped, listed without values, revocable', async () => {
      const admin = await auth.authenticate(deps(), (await auth.login(deps(), 'alice', PW, { expiresMs: 3_600_000 })).token);
      const t = await auth.createApiToken(deps(), admin, { name: 'nightly', role: 'editor', expiresMs: 90 * 86_400_000 });
      expect((await auth.authenticate(deps(), t.token))).toMatchObject({ kind: 'token', tokenName: 'nightly', role: 'editor', username: 'alice' });
      expect(await code(auth.createApiToken(deps(), admin, { name: 'nightly', role: 'viewer', expiresMs: 60_000 }))).toBe('COMPANYCTL_USAGE');
      const editor = await auth.authenticate(deps(), (await auth.login(deps(), 'bob', PW, { expiresMs: 3_600_000 })).token);
      expect(await code(auth.createApiToken(deps(), editor, { name: 'x', role: 'admin', expiresMs: 60_000 }))).toBe('COMPANYCTL_AUTH_FORBIDDEN');
      const listed = await auth.listTokens(deps());
      expect(listed.map((r) => r.name)).toContain('nightly');
      expect(JSON.stringify(listed)).not.toContain(t.token);
      await auth.revokeToken(deps(), 'nightly');
      expect(await code(auth.authenticate(deps(), t.token))).toBe('COMPANYCTL_AUTH_REVOKED');
      expect((await auth.listTokens(deps())).map((r) => r.name)).not.toContain('nightly');
      expect((await auth.listTokens(deps(), { all: true })).find((r) => r.name === 'nightly')?.state).toBe('revoked');
    });

    it('never disables or demotes the last active admin', async () => {
      expect(await code(auth.setUserDisabled(deps(), 'alice', true))).toBe('COMPANYCTL_USAGE');
      expect(await code(auth.setUserRole(deps(), 'alice', 'editor'))).toBe('COMPANYCTL_USAGE');
    });

    it('counts parallel guesses atomically: no more than the limit get a password check', async () => {
      await auth.addUser(deps(), 'frank', PW, 'viewer');
      const guesses = await Promise.all(Array.from({ length: 12 }, () => code(auth.login(deps(), 'frank', 'wrong-password-xx', { expiresMs: 60_000 }))));
      expect(new Set(guesses)).toEqual(new Set(['COMPANYCTL_AUTH_FAILED']));
      const row = (await store.read.all<{ failures: number; locked_until: unknown }>(`select failures, locked_until from login_throttle where username = 'frank'`))[0]!;
      expect(Number(row.failures)).toBe(12);
      expect(row.locked_until).not.toBeNull();
      expect(await code(auth.login(deps(), 'frank', PW, { expiresMs: 60_000 }))).toBe('COMPANYCTL_AUTH_FAILED');
    });

    it('an expired token name can be revoked and reused; tokens cannot mint tokens', async () => {
      const admin = await auth.authenticate(deps(), (await auth.login(deps(), 'alice', PW, { expiresMs: 3_600_000 })).token);
      const short = await auth.createApiToken(deps(), admin, { name: 'short', role: 'viewer', expiresMs: 60_000 });
      const asToken = await auth.authenticate(deps(), short.token);
      expect(await code(auth.createApiToken(deps(), asToken, { name: 'child', role: 'viewer', expiresMs: 60_000 }))).toBe('COMPANYCTL_AUTH_FORBIDDEN');
      const saved = clock;
      clock = new Date(clock.getTime() + 120_000);
      try {
        const again = await auth.createApiToken(deps(), { ...admin, expiresAt: clock.toISOString() }, { name: 'short', role: 'viewer', expiresMs: 60_000 });
        expect(again.name).toBe('short');
        expect((await auth.revokeToken(deps(), 'short')).state).toBe('revoked');
      } finally {
        clock = saved;
      }
    });

    it('keeps no token, password or hash in the file cache', async () => {
      const s = await auth.login(deps(), 'alice', PW, { expiresMs: 3_600_000 });
      await auth.authenticate(deps(), s.token);
      const dir = join(home.home, 'cache', loc.key);
      const text = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
      expect(text).toContain('PUBLIC KEY'); // the public key and session state were cached...
      expect(text).toContain('"username":"alice"');
      for (const secret of [s.token, s.token.split('.')[2]!, PW, '$argon2id$', 'PRIVATE KEY']) expect(text).not.toContain(secret);
    });
  });
}
