// Authentication: users with argon2id passwords, sessions (logins and named API tokens),
// EdDSA-signed JWTs bound to one store, throttled logins, and the per-command check that
// a token is valid and its session still live. Services return data; they never print.
import { randomUUID } from 'node:crypto';
import { atLeast, isRole, weaker, type Role } from '../domain/roles.js';
import { CompanyctlError } from '../errors.js';
import type { FileCache } from '../infra/cache.js';
import type { SqlReader, Store, StoreTx } from '../infra/db/store.js';
import { insertSecurityEvent } from './security-events.js';

export interface AuthDeps {
  store: () => Promise<Store>;
  cache?: FileCache;
  now: () => Date;
  /** Seconds a live session may be trusted from the file cache without asking the store. */
  sessionCacheSeconds: number;
  /** Who acts, for the audit trail (the logged-in user, or system:<os user>). */
  actor?: string;
}

export interface Identity {
  userId: number;
  username: string;
  role: Role;
  sessionId: string;
  kind: 'login' | 'token';
  tokenName: string | null;
  expiresAt: string;
}

// OWASP's argon2id floor: m = 19 MiB, t = 2, p = 1. Stored as PHC strings, so raising these
// later only needs a rehash on the next successful login.
export const ARGON2 = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;
const ARGON2ID = 2; // Algorithm.Argon2id (a const enum the bundler cannot inline)
const ISSUER = 'companyctl';
const CLOCK_TOLERANCE_S = 60;
export const LOCKOUT = { failures: 5, windowMs: 15 * 60_000, lockMs: 15 * 60_000 };
const GENERIC_FAILURE = () =>
  new CompanyctlError('COMPANYCTL_AUTH_FAILED', 'invalid username or password', {
    hint: `after ${LOCKOUT.failures} failed attempts in ${LOCKOUT.windowMs / 60_000} minutes, logins for that name pause for ${LOCKOUT.lockMs / 60_000} minutes`,
  });

// ---- passwords ----

/** The password rules in words, and the one a password breaks (undefined when it meets them all). */
export function passwordRules(username: string): { text: string; check(pw: string): string | undefined } {
  return {
    text: 'at least 12 characters, not containing the user name',
    check: (pw) => {
      try {
        checkPassword(pw, username);
        return undefined;
      } catch (e) {
        return (e as Error).message;
      }
    },
  };
}

export function checkPassword(password: string, username: string): void {
  const problem =
    password.length < 12
      ? 'must be at least 12 characters'
      : password.length > 1024
        ? 'must be at most 1024 characters'
        : password.toLowerCase().includes(username.toLowerCase())
          ? 'must not contain the user name'
          : undefined;
  if (problem) throw new CompanyctlError('COMPANYCTL_WEAK_PASSWORD', `password ${problem}`, { field: 'password' });
}

export async function hashPassword(password: string): Promise<string> {
  const { hash } = await import('@node-rs/argon2');
  return hash(password, { algorithm: ARGON2ID, ...ARGON2 } as never);
}

async function verifyPassword(phc: string, password: string): Promise<boolean> {
  const { verify } = await import('@node-rs/argon2');
  try {
    return await verify(phc, password);
  } catch {
    return false;
  }
}

function needsRehash(phc: string): boolean {
  const m = /^\$argon2id\$v=\d+\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(phc);
  return !m || Number(m[1]) < ARGON2.memoryCost || Number(m[2]) < ARGON2.timeCost;
}

// A real argon2id hash (same parameters) of a random, discarded password: checking an unknown
// user's password against it costs the same time as checking a real user's.
const DUMMY_HASH = '$argon2id$v=19$m=19456,t=2,p=1$yHd4wNtycJjcyoJ1uCesaA$jcSJMyI7qR+PCk2oBoKgM4MvJ73OrosfFQDXclV4oJM';

// ---- users ----

export interface UserRow {
  id: number;
  username: string;
  role: Role;
  disabledAt: string | null;
  createdAt: string;
}

const USERNAME = /^[a-z0-9][a-z0-9._@-]{0,63}$/;
export function checkUsername(username: string): string {
  const u = username.trim().toLowerCase();
  if (!USERNAME.test(u)) {
    throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `user name ${JSON.stringify(username)} must be 1-64 of a-z 0-9 . _ @ -`, { field: 'username' });
  }
  return u;
}

async function exec(tx: StoreTx, sql: string, params: unknown[] = []): Promise<void> {
  await tx.em.getConnection().execute(sql, params, 'run', tx.em.getTransactionContext());
}

export async function addUser(deps: AuthDeps, username: string, password: string, role: Role): Promise<UserRow> {
  const name = checkUsername(username);
  checkPassword(password, name);
  const passwordHash = await hashPassword(password);
  const store = await deps.store();
  const { AppUserEntity } = await import('../infra/db/entities.js');
  return store.transaction(async (tx) => {
    const clash = await tx.read.all('select id from app_user where username = ?', [name]);
    if (clash.length > 0) throw new CompanyctlError('COMPANYCTL_USER_EXISTS', `user ${name} already exists`, { field: 'username' });
    const now = deps.now().toISOString();
    const id = Number(await tx.em.insert(AppUserEntity, { username: name, passwordHash, role, disabledAt: null, createdAt: now, updatedAt: now }));
    await audited(tx, deps, 'user.added', `user:${name}`, { username: name, role });
    return { id, username: name, role, disabledAt: null, createdAt: now };
  });
}

export async function countUsers(store: Store): Promise<number> {
  return Number((await store.read.all<{ n: number }>('select count(*) as n from app_user'))[0]?.n ?? 0);
}

export async function listUsers(deps: AuthDeps): Promise<UserRow[]> {
  const store = await deps.store();
  const rows = await store.read.all<Record<string, unknown>>('select id, username, role, disabled_at, created_at from app_user order by username');
  return rows.map((r) => ({
    id: Number(r.id),
    username: String(r.username),
    role: String(r.role) as Role,
    disabledAt: r.disabled_at == null ? null : isoOf(r.disabled_at),
    createdAt: isoOf(r.created_at),
  }));
}

async function findUser(read: SqlReader, username: string): Promise<{ id: number; role: Role; passwordHash: string; disabledAt: unknown } | undefined> {
  const rows = await read.all<Record<string, unknown>>('select id, role, password_hash, disabled_at from app_user where username = ?', [username]);
  const r = rows[0];
  return r && { id: Number(r.id), role: String(r.role) as Role, passwordHash: String(r.password_hash), disabledAt: r.disabled_at };
}

function noSuchUser(username: string): CompanyctlError {
  return new CompanyctlError('COMPANYCTL_NOT_FOUND', `no user ${username}`, { hint: 'list users with "companyctl user list"' });
}

/** Revoke every live session of a user and drop their cached state on this host. */
async function revokeAllSessions(deps: AuthDeps, tx: StoreTx, userId: number, now: string): Promise<string[]> {
  const ids = (await tx.read.all<{ id: string }>('select id from auth_session where user_id = ? and revoked_at is null', [userId])).map((r) => r.id);
  await exec(tx, `update auth_session set revoked_at = ${castTs(tx)} where user_id = ? and revoked_at is null`, [now, userId]);
  return ids;
}

const castTs = (tx: StoreTx) => (tx.dialect === 'postgresql' ? 'cast(? as timestamptz)' : '?');

export async function setUserDisabled(deps: AuthDeps, username: string, disabled: boolean): Promise<{ revokedSessions: number }> {
  const name = checkUsername(username);
  const store = await deps.store();
  const revoked = await store.transaction(async (tx) => {
    const user = await findUser(tx.read, name);
    if (!user) throw noSuchUser(name);
    if (disabled && user.role === 'admin' && !user.disabledAt) await assertAnotherAdmin(tx, user.id);
    const now = deps.now().toISOString();
    await exec(tx, `update app_user set disabled_at = ${disabled ? castTs(tx) : 'null'}, updated_at = ${castTs(tx)} where id = ?`, disabled ? [now, now, user.id] : [now, user.id]);
    const ids = disabled ? await revokeAllSessions(deps, tx, user.id, now) : [];
    await audited(tx, deps, disabled ? 'user.disabled' : 'user.enabled', `user:${name}`, { username: name, ...(disabled ? { revokedSessions: ids.length } : {}) });
    return ids;
  });
  forgetSessions(deps, revoked);
  return { revokedSessions: revoked.length };
}

export async function setUserRole(deps: AuthDeps, username: string, role: Role): Promise<void> {
  const name = checkUsername(username);
  const store = await deps.store();
  const sessions = await store.transaction(async (tx) => {
    const user = await findUser(tx.read, name);
    if (!user) throw noSuchUser(name);
    if (user.role === 'admin' && role !== 'admin') await assertAnotherAdmin(tx, user.id);
    await exec(tx, `update app_user set role = ?, updated_at = ${castTs(tx)} where id = ?`, [role, deps.now().toISOString(), user.id]);
    await audited(tx, deps, 'user.role_changed', `user:${name}`, { username: name, from: user.role, to: role });
    return (await tx.read.all<{ id: string }>('select id from auth_session where user_id = ? and revoked_at is null', [user.id])).map((r) => r.id);
  });
  // Cached session state carries the role: drop it so the new role applies at once here.
  forgetSessions(deps, sessions);
}

async function assertAnotherAdmin(tx: StoreTx, userId: number): Promise<void> {
  const others = await tx.read.all(`select id from app_user where role = 'admin' and disabled_at is null and id <> ?`, [userId]);
  if (others.length === 0) {
    throw new CompanyctlError('COMPANYCTL_USAGE', 'this is the last active admin; make another user admin first', { field: 'role' });
  }
}

/** Change a password; every session of that user is revoked (they log in again). */
export async function setUserPassword(deps: AuthDeps, username: string, password: string): Promise<{ revokedSessions: number }> {
  const name = checkUsername(username);
  checkPassword(password, name);
  const passwordHash = await hashPassword(password);
  const store = await deps.store();
  const revoked = await store.transaction(async (tx) => {
    const user = await findUser(tx.read, name);
    if (!user) throw noSuchUser(name);
    const now = deps.now().toISOString();
    await exec(tx, `update app_user set password_hash = ?, updated_at = ${castTs(tx)} where id = ?`, [passwordHash, now, user.id]);
    const ids = await revokeAllSessions(deps, tx, user.id, now);
    await audited(tx, deps, 'user.password_changed', `user:${name}`, { username: name, revokedSessions: ids.length });
    return ids;
  });
  forgetSessions(deps, revoked);
  return { revokedSessions: revoked.length };
}

// ---- sessions and tokens ----

interface Keys {
  storeId: string;
  publicKey: string;
}

const KEYS_CACHE = 'auth.keys';
const sessionCacheKey = (sid: string) => `auth.session.${sid}`;

async function storeKeys(deps: AuthDeps, opts: { fresh?: boolean } = {}): Promise<Keys & { cached: boolean }> {
  const cached = opts.fresh ? undefined : deps.cache?.get<Keys>(KEYS_CACHE);
  if (cached) return { ...cached, cached: true };
  const store = await deps.store();
  const rows = await store.read.all<{ key: string; value: string }>(`select key, value from store_meta where key in ('store_id', 'jwt_public_key')`);
  const get = (k: string) => rows.find((r) => r.key === k)?.value;
  const keys = { storeId: get('store_id'), publicKey: get('jwt_public_key') };
  if (!keys.storeId || !keys.publicKey) throw new CompanyctlError('COMPANYCTL_SCHEMA_OUTDATED', 'this store has no signing key yet', { hint: 'run "companyctl db migrate"' });
  // Public material only: the store id and the public key are not secrets.
  deps.cache?.set(KEYS_CACHE, keys, 0);
  return { ...(keys as Keys), cached: false };
}

async function sign(tx: StoreTx, claims: { sub: string; sid: string; role: Role; aud: string; exp: Date; iat: Date }): Promise<string> {
  const { SignJWT } = await import('jose/jwt/sign');
  const { importPKCS8 } = await import('jose/key/import');
  const pem = (await tx.read.all<{ value: string }>(`select value from store_meta where key = 'jwt_private_key'`))[0]?.value;
  if (!pem) throw new CompanyctlError('COMPANYCTL_SCHEMA_OUTDATED', 'this store has no signing key yet', { hint: 'run "companyctl db migrate"' });
  const key = await importPKCS8(pem, 'EdDSA');
  return new SignJWT({ sid: claims.sid, role: claims.role })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer(ISSUER)
    .setAudience(claims.aud)
    .setIssuedAt(Math.floor(claims.iat.getTime() / 1000))
    .setExpirationTime(Math.floor(claims.exp.getTime() / 1000))
    .sign(key);
}

async function openSession(
  tx: StoreTx,
  user: { id: number },
  opts: { kind: 'login' | 'token'; name: string | null; role: Role; now: Date; expiresMs: number },
): Promise<{ token: string; sessionId: string; expiresAt: string }> {
  const { AuthSessionEntity } = await import('../infra/db/entities.js');
  const sessionId = randomUUID();
  const exp = new Date(opts.now.getTime() + opts.expiresMs);
  await tx.em.insert(AuthSessionEntity, {
    id: sessionId,
    userId: user.id,
    kind: opts.kind,
    name: opts.name,
    role: opts.role,
    createdAt: opts.now.toISOString(),
    expiresAt: exp.toISOString(),
    revokedAt: null,
  });
  const aud = (await tx.read.all<{ value: string }>(`select value from store_meta where key = 'store_id'`))[0]!.value;
  const token = await sign(tx, { sub: String(user.id), sid: sessionId, role: opts.role, aud, exp, iat: opts.now });
  return { token, sessionId, expiresAt: exp.toISOString() };
}

/** Check a password (throttled) and open a login session. */
export async function login(
  deps: AuthDeps,
  username: string,
  password: string,
  opts: { expiresMs: number },
): Promise<{ token: string; sessionId: string; expiresAt: string; username: string; role: Role }> {
  const name = username.trim().toLowerCase();
  const store = await deps.store();
  const now = deps.now();
  // Count this attempt first, atomically, so parallel guesses cannot slip past the limit.
  const locked = await countAttempt(store, name, now);
  const user = locked ? undefined : await findUser(store.read, name);
  const ok = !locked && (await verifyPassword(user?.passwordHash ?? DUMMY_HASH, password)) && !!user && !user.disabledAt;
  if (!ok) {
    await loginFailed(deps, store, name, locked ? 'locked' : !user ? 'unknown_user' : user.disabledAt ? 'disabled' : 'wrong_password');
    throw GENERIC_FAILURE();
  }
  const newHash = needsRehash(user!.passwordHash) ? await hashPassword(password) : undefined;
  return store.transaction(async (tx) => {
    await exec(tx, 'delete from login_throttle where username = ?', [name]);
    if (newHash) await exec(tx, 'update app_user set password_hash = ? where id = ?', [newHash, user!.id]);
    const s = await openSession(tx, user!, { kind: 'login', name: null, role: user!.role, now, expiresMs: opts.expiresMs });
    await audited(tx, { ...deps, actor: name }, 'auth.login', `user:${name}`, { username: name, role: user!.role, expiresAt: s.expiresAt });
    return { ...s, username: name, role: user!.role };
  });
}

/** Check a user's current password, throttled like a login (for changing one's own password). */
export async function confirmPassword(deps: AuthDeps, username: string, password: string): Promise<void> {
  const name = username.trim().toLowerCase();
  const store = await deps.store();
  const locked = await countAttempt(store, name, deps.now());
  const user = locked ? undefined : await findUser(store.read, name);
  if (locked || !user || !(await verifyPassword(user.passwordHash, password))) {
    await loginFailed(deps, store, name, locked ? 'locked' : 'wrong_current_password');
    throw new CompanyctlError('COMPANYCTL_AUTH_FAILED', 'the current password is wrong', { hint: GENERIC_FAILURE().hint });
  }
  await store.transaction((tx) => exec(tx, 'delete from login_throttle where username = ?', [name]));
}

/** Record one attempt for a typed name; true when the name is locked (this attempt is refused). */
async function countAttempt(store: Store, name: string, now: Date): Promise<boolean> {
  const nowIso = now.toISOString();
  const windowOpenSince = new Date(now.getTime() - LOCKOUT.windowMs).toISOString();
  return store.transaction(async (tx) => {
    const ts = castTs(tx);
    // Rows past their window and lock hold nothing a new attempt would not reset: drop them, so
    // every name ever typed does not stay for good.
    await exec(tx, `delete from login_throttle where window_started_at <= ${ts} and (locked_until is null or locked_until <= ${ts})`, [windowOpenSince, nowIso]);
    const rows = await tx.read.all<Record<string, unknown>>(
      `insert into login_throttle (username, failures, window_started_at, locked_until) values (?, 1, ${ts}, null)
       on conflict (username) do update set
         failures = case when login_throttle.window_started_at > ${ts} then login_throttle.failures + 1 else 1 end,
         window_started_at = case when login_throttle.window_started_at > ${ts} then login_throttle.window_started_at else excluded.window_started_at end
       returning failures, locked_until`,
      [name, nowIso, windowOpenSince, windowOpenSince],
    );
    const row = rows[0]!;
    if (row.locked_until != null && isoOf(row.locked_until) > nowIso) return true;
    // Attempts, not failures, are counted (a success deletes the row): more than the limit locks.
    if (Number(row.failures) > LOCKOUT.failures) {
      await exec(tx, `update login_throttle set locked_until = ${ts} where username = ?`, [new Date(now.getTime() + LOCKOUT.lockMs).toISOString(), name]);
      return true;
    }
    return false;
  });
}

export async function createApiToken(
  deps: AuthDeps,
  creator: Identity,
  opts: { name: string; role: Role; expiresMs: number },
): Promise<{ token: string; sessionId: string; expiresAt: string; name: string; role: Role }> {
  const name = opts.name.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `--name: ${JSON.stringify(opts.name)} must be 1-64 of letters, digits . _ -`, { field: '--name' });
  }
  if (!atLeast(creator.role, opts.role)) {
    throw new CompanyctlError('COMPANYCTL_AUTH_FORBIDDEN', `a ${creator.role} cannot create a token with role ${opts.role}`);
  }
  // A token minting tokens would outlive its own revocation: only a login session may.
  if (creator.kind === 'token') {
    throw new CompanyctlError('COMPANYCTL_AUTH_FORBIDDEN', 'API tokens cannot create API tokens', { hint: 'log in ("companyctl login") to create one' });
  }
  const store = await deps.store();
  return store.transaction(async (tx) => {
    // An expired token's name is free again (it is marked revoked, so the unique index allows it).
    await exec(tx, `update auth_session set revoked_at = ${castTs(tx)} where kind = 'token' and name = ? and revoked_at is null and expires_at <= ${castTs(tx)}`, [
      deps.now().toISOString(),
      name,
      deps.now().toISOString(),
    ]);
    const clash = await tx.read.all(`select id from auth_session where kind = 'token' and name = ? and revoked_at is null`, [name]);
    if (clash.length > 0) {
      throw new CompanyctlError('COMPANYCTL_USAGE', `a live token named ${name} exists`, { field: '--name', hint: `revoke it first: "companyctl token revoke ${name}"` });
    }
    const s = await openSession(tx, { id: creator.userId }, { kind: 'token', name, role: opts.role, now: deps.now(), expiresMs: opts.expiresMs });
    await audited(tx, deps, 'token.created', `token:${name}`, { name, role: opts.role, expiresAt: s.expiresAt });
    return { ...s, name, role: opts.role };
  });
}

export interface TokenRow {
  id: string;
  name: string;
  role: Role;
  createdBy: string;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  state: 'live' | 'expired' | 'revoked';
}

export async function listTokens(deps: AuthDeps, opts: { all?: boolean } = {}): Promise<TokenRow[]> {
  const store = await deps.store();
  const rows = await store.read.all<Record<string, unknown>>(
    `select s.id, s.name, s.role, u.username, s.created_at, s.expires_at, s.revoked_at from auth_session s join app_user u on u.id = s.user_id
     where s.kind = 'token' order by s.created_at`,
  );
  const now = deps.now().toISOString();
  return rows
    .map((r) => {
      const expiresAt = isoOf(r.expires_at);
      const revokedAt = r.revoked_at == null ? null : isoOf(r.revoked_at);
      return {
        id: String(r.id),
        name: String(r.name),
        role: String(r.role) as Role,
        createdBy: String(r.username),
        createdAt: isoOf(r.created_at),
        expiresAt,
        revokedAt,
        state: (revokedAt ? 'revoked' : expiresAt <= now ? 'expired' : 'live') as TokenRow['state'],
      };
    })
    .filter((t) => opts.all || t.state === 'live');
}

export async function revokeToken(deps: AuthDeps, nameOrId: string): Promise<TokenRow> {
  const store = await deps.store();
  const candidates = (await listTokens(deps, { all: true })).filter((t) => t.state !== 'revoked' && (t.name === nameOrId || t.id === nameOrId));
  const t = candidates[0];
  if (!t) throw new CompanyctlError('COMPANYCTL_NOT_FOUND', `no live or expired token ${nameOrId}`, { hint: 'list tokens with "companyctl token list --all"' });
  await revokeSession(deps, store, t.id, (tx) => audited(tx, deps, 'token.revoked', `token:${t.name}`, { name: t.name, role: t.role, createdBy: t.createdBy }));
  return { ...t, state: 'revoked', revokedAt: deps.now().toISOString() };
}

async function revokeSession(deps: AuthDeps, store: Store, sessionId: string, audit: (tx: StoreTx) => Promise<void>): Promise<void> {
  await store.transaction(async (tx) => {
    await exec(tx, `update auth_session set revoked_at = ${castTs(tx)} where id = ? and revoked_at is null`, [deps.now().toISOString(), sessionId]);
    await audit(tx);
  });
  forgetSessions(deps, [sessionId]);
}

/** End the session behind this identity (the caller then removes the local copy). */
export async function logout(deps: AuthDeps, identity: Pick<Identity, 'sessionId' | 'username'>): Promise<void> {
  await revokeSession(deps, await deps.store(), identity.sessionId, (tx) =>
    audited(tx, { ...deps, actor: identity.username }, 'auth.logout', `user:${identity.username}`, { username: identity.username }),
  );
}

// ---- audit ----

function audited(tx: StoreTx, deps: AuthDeps, type: string, target: string, data: Record<string, unknown>): Promise<void> {
  return insertSecurityEvent(tx, { type, actor: deps.actor ?? 'system', target, data, now: deps.now() });
}

/** A refused login: the name as typed (never the password), why, and a lockout if this attempt caused one. */
async function loginFailed(deps: AuthDeps, store: Store, typed: string, reason: string): Promise<void> {
  const { throttleOf } = await import('../infra/db/audit-store.js');
  const t = await throttleOf(store.read, typed);
  const now = deps.now();
  const target = `user:${typed}`;
  await store.transaction(async (tx) => {
    await insertSecurityEvent(tx, { type: 'auth.login_failed', actor: deps.actor ?? 'system', target, data: { username: typed, reason }, now });
    // The attempt past the limit is the one that locked the name.
    if (t?.lockedUntil && t.lockedUntil > now.toISOString() && t.failures === LOCKOUT.failures + 1) {
      await insertSecurityEvent(tx, { type: 'auth.lockout', actor: deps.actor ?? 'system', target, data: { username: typed, failures: t.failures, lockedUntil: t.lockedUntil }, now });
    }
  });
}

function forgetSessions(deps: AuthDeps, sessionIds: string[]): void {
  deps.cache?.delete(sessionIds.map(sessionCacheKey));
}

// ---- the per-command check ----

interface CachedSession {
  /** The store the session was checked against (a store re-created in place has another). */
  storeId: string;
  userId: number;
  username: string;
  role: Role;
  kind: 'login' | 'token';
  tokenName: string | null;
  expiresAt: string;
}

/**
 * Verify a token: pinned algorithm (EdDSA), signature, exp/nbf with a small clock allowance,
 * issuer and audience (this store), then the session: not revoked, not expired, user enabled.
 */
export async function authenticate(deps: AuthDeps, token: string): Promise<Identity> {
  const keys = await storeKeys(deps);
  try {
    return await verifyWith(deps, token, keys);
  } catch (e) {
    // The store may have been re-created at the same place since its keys were cached here:
    // ask the store once before saying no.
    const code = (e as CompanyctlError).code;
    if (!keys.cached || (code !== 'COMPANYCTL_AUTH_WRONG_STORE' && code !== 'COMPANYCTL_AUTH_INVALID')) throw e;
    const fresh = await storeKeys(deps, { fresh: true });
    if (fresh.storeId === keys.storeId && fresh.publicKey === keys.publicKey) throw e;
    return verifyWith(deps, token, fresh);
  }
}

async function verifyWith(deps: AuthDeps, token: string, keys: Keys): Promise<Identity> {
  const { jwtVerify } = await import('jose/jwt/verify');
  const { decodeJwt } = await import('jose/jwt/decode');
  const { createPublicKey } = await import('node:crypto');
  let unverified: Record<string, unknown>;
  try {
    unverified = decodeJwt(token);
  } catch {
    throw invalidToken('it is not a JWT');
  }
  const aud = unverified.aud;
  if (aud !== keys.storeId && !(Array.isArray(aud) && aud.includes(keys.storeId))) {
    throw new CompanyctlError('COMPANYCTL_AUTH_WRONG_STORE', 'this token belongs to another companyctl store', {
      hint: 'log in to this store ("companyctl login"), or check --db and --profile',
    });
  }
  let payload: Record<string, unknown>;
  try {
    // A KeyObject is what jose uses on Node anyway; building it directly skips loading jose's key importers.
    const key = createPublicKey(keys.publicKey);
    ({ payload } = await jwtVerify(token, key, { algorithms: ['EdDSA'], issuer: ISSUER, audience: keys.storeId, clockTolerance: CLOCK_TOLERANCE_S, requiredClaims: ['exp', 'sub'], currentDate: deps.now() }));
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_JWT_EXPIRED') {
      throw new CompanyctlError('COMPANYCTL_AUTH_EXPIRED', 'your session has expired', { hint: 'run "companyctl login" (or create a new API token)' });
    }
    throw invalidToken((e as Error).message);
  }
  const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
  if (!sid) throw invalidToken('it has no session id');
  const session = await liveSession(deps, sid, Number(payload.sub), keys.storeId);
  return { ...session, sessionId: sid };
}

function invalidToken(reason: string): CompanyctlError {
  return new CompanyctlError('COMPANYCTL_AUTH_INVALID', `the token was rejected: ${reason.replace(/eyJ[\w-]+\.[\w-]+\.?[\w-]*/g, '<token>')}`, {
    hint: 'run "companyctl login" again; if COMPANYCTL_TOKEN is set, check its value',
  });
}

async function liveSession(deps: AuthDeps, sid: string, sub: number, storeId: string): Promise<CachedSession> {
  const cached = deps.cache?.get<CachedSession>(sessionCacheKey(sid));
  if (cached && cached.userId === sub && cached.storeId === storeId && cached.expiresAt > deps.now().toISOString()) return cached;
  const generation = deps.cache?.generation() ?? '';
  const store = await deps.store();
  const r = (
    await store.read.all<Record<string, unknown>>(
      `select s.user_id, s.kind, s.name, s.role, s.expires_at, s.revoked_at, u.username, u.role as user_role, u.disabled_at
       from auth_session s join app_user u on u.id = s.user_id where s.id = ?`,
      [sid],
    )
  )[0];
  const revoked = () => new CompanyctlError('COMPANYCTL_AUTH_REVOKED', 'this session was ended (logged out, revoked, or the user was disabled)', { hint: 'run "companyctl login"' });
  if (!r || Number(r.user_id) !== sub || r.revoked_at != null || r.disabled_at != null) throw revoked();
  const expiresAt = isoOf(r.expires_at);
  if (expiresAt <= deps.now().toISOString()) throw new CompanyctlError('COMPANYCTL_AUTH_EXPIRED', 'your session has expired', { hint: 'run "companyctl login"' });
  const session: CachedSession = {
    storeId,
    userId: sub,
    username: String(r.username),
    role: weaker(String(r.role) as Role, String(r.user_role) as Role),
    kind: String(r.kind) as 'login' | 'token',
    tokenName: r.name == null ? null : String(r.name),
    expiresAt,
  };
  if (deps.sessionCacheSeconds > 0) deps.cache?.fill([[sessionCacheKey(sid), session]], deps.sessionCacheSeconds, generation);
  return session;
}

export function requireRole(identity: Identity | undefined, need: Role, what: string): void {
  if (!identity) throw new CompanyctlError('COMPANYCTL_AUTH_REQUIRED', 'not logged in', { hint: 'run "companyctl login", or set COMPANYCTL_TOKEN' });
  if (!atLeast(identity.role, need)) {
    const who = identity.kind === 'token' ? `the token ${identity.tokenName} (of ${identity.username})` : identity.username;
    throw new CompanyctlError('COMPANYCTL_AUTH_FORBIDDEN', `${what} needs the ${need} role; ${who} is ${identity.role}`, {
      hint: 'ask an admin ("companyctl user set-role")',
    });
  }
}

export function parseRole(value: string, flag: string): Role {
  const r = value.trim().toLowerCase();
  if (!isRole(r)) throw new CompanyctlError('COMPANYCTL_USAGE', `${flag}: ${JSON.stringify(value)} is not admin, editor or viewer`, { field: flag });
  return r;
}

function isoOf(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  const s = String(v);
  return /T.*Z$/.test(s) ? s : new Date(s).toISOString();
}
