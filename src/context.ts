// The per-run context: streams, environment, clock, paths and lazy access to the config,
// the store and the cache. Commands get everything they need from here; tests build one
// with createTestContext().
import { userInfo } from 'node:os';
import { PassThrough, Writable } from 'node:stream';
import { loadConfig, type Config } from './infra/config.js';
import { FileCache, type CacheTrust } from './infra/cache.js';
import { listeningSince } from './infra/worker-heartbeat.js';
import { resolvePaths, type Paths } from './infra/paths.js';
import { resolveStoreLocation, type StoreLocation } from './infra/db/location.js';
import type { Store } from './infra/db/store.js';
import { escapeControl } from './io/escape.js';
import { terminalPrompter, type Prompter } from './io/prompter.js';
import type { AuthDeps, Identity } from './services/auth.js';
import type { CompanyDeps } from './services/company.js';
import type { EventsEnv } from './services/events.js';
import { eventsSettings } from './services/events-settings.js';
import { workerSettings } from './services/worker/settings.js';
import { redactArgv, redactText } from './services/audit-redact.js';
import { writeAppLog, type AppLogEntry } from './infra/app-log.js';
import { appendCommandLine, isFresh } from './infra/metrics-file.js';

export interface GlobalOptions {
  json?: boolean;
  db?: string;
  config?: string;
  cache?: boolean; // commander's --no-cache sets this to false
  quiet?: boolean;
  verbose?: boolean;
  debug?: boolean;
  yes?: boolean;
  profile?: string;
  metricsFile?: string;
  color?: boolean; // commander's --no-color sets this to false
}

export interface IO {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdinIsTTY: boolean;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
}

export interface Context {
  io: IO;
  env: Record<string, string | undefined>;
  now(): Date;
  paths: Paths;
  globals: GlobalOptions;
  prompter: Prompter;
  /** The authenticated caller, set before a command that needs a role runs. */
  identity?: Identity;
  /** The command line as typed (after `node companyctl`), for the audit log, secrets removed there. */
  argv: string[];
  /** Set once a store transaction committed: the runner then delivers the events it made. */
  wrote: boolean;
  /** Events whose writer already dropped their cache entries in this run (the cache handler skips them). */
  cacheInvalidated: Set<number>;
  /** Who is acting (recorded in events): the logged-in user, or system:<os user> for init. */
  actor(): string;
  /** The credential profile (--profile, COMPANYCTL_PROFILE, or "default"). */
  profile(): string;
  config(): Config;
  storeLocation(): StoreLocation;
  /** The open store, opened on first use and closed by close(). */
  store(): Promise<Store>;
  /** `db migrate` only: the store may open with migrations pending (to check who is asking). */
  schemaPendingOk?: boolean;
  /** The read cache for the current store, or undefined with --no-cache. */
  cache(): FileCache | undefined;
  /** Seconds a cache entry lives: on PostgreSQL as long as a worker may vouch for it, until invalidated on SQLite. */
  cacheTtlSeconds(): number;
  /** How long company cache hits are believed: on PostgreSQL, `cacheTtlSeconds` unless this host's worker listens. */
  cacheTrust(): CacheTrust | undefined;
  /** A notice for the user, on stderr, unless --quiet. */
  notice(message: string): void;
  close(): Promise<void>;
}

export function createContext(io: IO, env: Record<string, string | undefined>, globals: GlobalOptions, prompter?: Prompter, argv: string[] = []): Context {
  const paths = resolvePaths(globals.config ? { ...env, COMPANYCTL_CONFIG: globals.config } : env);
  let config: Config | undefined;
  let location: StoreLocation | undefined;
  let storePromise: Promise<Store> | undefined;
  let cache: FileCache | undefined;
  const ctx: Context = {
    io,
    env,
    now: () => new Date(),
    paths,
    globals,
    argv,
    wrote: false,
    cacheInvalidated: new Set(),
    prompter: prompter ?? terminalPrompter(io, io.stdinIsTTY && io.stderrIsTTY),
    actor: () => {
      const id = ctx.identity;
      if (!id) return `system:${safeUserName()}`;
      return id.kind === 'token' ? `${id.username} (token ${id.tokenName})` : id.username;
    },
    profile: () => globals.profile || env.COMPANYCTL_PROFILE || 'default',
    config: () => (config ??= loadConfig(paths.configFile)),
    storeLocation() {
      if (!location) {
        location = resolveStoreLocation(globals.db ?? env.COMPANYCTL_DB ?? ctx.config().db, paths.defaultDb);
      }
      return location;
    },
    async store() {
      storePromise ??= import('./infra/db/store.js').then(async (m) => trackWrites(ctx, await m.openStore(ctx.storeLocation(), { pendingOk: ctx.schemaPendingOk })));
      return storePromise;
    },
    cache() {
      if (globals.cache === false) return undefined;
      return (cache ??= new FileCache(paths.cacheDir, ctx.storeLocation().key));
    },
    cacheTtlSeconds() {
      const cfg = ctx.config();
      if (ctx.storeLocation().dialect !== 'postgresql') return cfg.sqliteCacheTtlSeconds ?? 0;
      const ttl = cfg.cacheTtlSeconds ?? 30;
      // Entries live as long as a worker may vouch for them; cacheTrust() cuts them to `ttl` without one.
      return ttl > 0 ? Math.max(ttl, cfg.workerCacheSeconds ?? 600) : 0;
    },
    cacheTrust() {
      const cfg = ctx.config();
      const ttl = cfg.cacheTtlSeconds ?? 30;
      if (ctx.storeLocation().dialect !== 'postgresql' || ttl <= 0) return undefined;
      // Beats every 2 s by default; a worker silent for longer than its lease is not vouching for anything.
      const since = listeningSince(paths.stateDir, ctx.storeLocation().key, WORKER_SILENT_MS);
      return { maxAgeMs: ttl * 1000, since };
    },
    notice(message) {
      if (!globals.quiet) io.stderr.write(`${escapeControl(message)}\n`);
    },
    async close() {
      if (storePromise) {
        const p = storePromise;
        storePromise = undefined;
        await p.then((s) => s.close()).catch(() => undefined);
      }
    },
  };
  return ctx;
}

/**
 * Every transaction of this run stamps the events it inserted with this command line and role
 * (for the audit log), and marks the run as one that wrote.
 */
function trackWrites(ctx: Context, store: Store): Store {
  let command: string | undefined;
  const transaction: Store['transaction'] = async (fn) => {
    const { stampEvents } = await import('./infra/db/events-store.js');
    command ??= `companyctl ${redactArgv(ctx.argv)}`.trim();
    const out = await store.transaction(async (tx) => {
      const r = await fn(tx);
      await stampEvents(tx, command!, ctx.identity?.role ?? null);
      return r;
    });
    ctx.wrote = true;
    return out;
  };
  return { ...store, transaction };
}

/** A worker whose heartbeat file is older than this is not vouching for the cache (it beats every 2 s). */
const WORKER_SILENT_MS = 10_000;

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** What the auth service needs, from this run's context. */
export function authDeps(ctx: Context): AuthDeps {
  return {
    store: () => ctx.store(),
    cache: ctx.cache(),
    now: () => ctx.now(),
    sessionCacheSeconds: ctx.config().sessionCacheSeconds ?? 30,
    // Read when an event is recorded: the identity may be set after these deps were made.
    get actor() {
      return ctx.actor();
    },
  };
}

/** Find this run's token (COMPANYCTL_TOKEN, then the stored one) and verify it. */
export async function identify(ctx: Context): Promise<Identity> {
  const { credentialSlot, findToken } = await import('./infra/credentials.js');
  const { authenticate } = await import('./services/auth.js');
  const { CompanyctlError } = await import('./errors.js');
  const found = await findToken(ctx.env, credentialSlot(ctx.paths.configDir, ctx.profile(), ctx.storeLocation().key));
  if (!found) {
    throw new CompanyctlError('COMPANYCTL_AUTH_REQUIRED', `not logged in to ${ctx.storeLocation().display} (profile ${ctx.profile()})`, {
      hint: 'run "companyctl login"; in cron or CI set COMPANYCTL_TOKEN to an API token',
    });
  }
  ctx.identity = await authenticate(authDeps(ctx), found.token);
  return ctx.identity;
}

/** What the company service needs, from this run's context. */
export function companyDeps(ctx: Context): CompanyDeps {
  return {
    store: () => ctx.store(),
    cache: ctx.cache(),
    cacheTtlSeconds: ctx.cacheTtlSeconds(),
    now: () => ctx.now(),
    actor: ctx.actor(),
    committed: (eventId) => ctx.cacheInvalidated.add(eventId),
    cacheTrust: () => ctx.cacheTrust(),
  };
}

/** What the events, audit and metrics services need, from this run's context. */
export function eventsEnv(ctx: Context, extra: Partial<EventsEnv> = {}): EventsEnv {
  let settings: ReturnType<EventsEnv['settings']> | undefined;
  const cache = ctx.cache();
  return {
    store: () => ctx.store(),
    now: () => ctx.now(),
    stateDir: ctx.paths.stateDir,
    settings: () => (settings ??= eventsSettings(ctx.config())),
    cache,
    cacheTtlSeconds: ctx.cacheTtlSeconds(),
    cacheDir: cache ? `${cache.rootDir}/${ctx.storeLocation().key}` : undefined,
    actor: ctx.actor(),
    promFile: () => promFileOf(ctx),
    log: (entry) => appLog(ctx, entry),
    cacheInvalidated: (eventId) => ctx.cacheInvalidated.has(eventId),
    beforeAck: () => failpoint(ctx, 'before-ack'),
    workerLeaseMs: (dialect) => workerSettings(ctx.config(), dialect).leaseMs,
    broker: async () => (ctx.config().broker ? (await import('./services/broker-publish.js')).brokerHandlerFor(ctx.config().broker, ctx.paths.configFile, ctx.env) : undefined),
    ...extra,
  };
}

function promFileOf(ctx: Context): string {
  return ctx.globals.metricsFile || ctx.config().metricsFile || `${ctx.paths.stateDir}/companyctl.prom`;
}

/**
 * Count a finished command with one appended line. True if the metrics text file is recent
 * enough (under a minute old) that it need not be rendered now.
 */
export function recordCommandQuickly(ctx: Context, command: string, exitCode: number, seconds: number): boolean {
  appendCommandLine(ctx.paths.stateDir, command, exitCode, seconds);
  try {
    return isFresh(promFileOf(ctx), 60_000);
  } catch {
    return false; // a broken config: the full path reports it
  }
}

/**
 * Tests only: COMPANYCTL_FAILPOINT=<name> kills this process at that point (SIGKILL, no
 * clean-up), to prove that a crash loses no event: 'after-commit' (before any delivery),
 * 'before-ack' (handlers ran, outcomes not yet recorded), 'broker-before-ack' (a consumed batch
 * committed, its messages not yet acked).
 */
export function failpoint(ctx: Pick<Context, 'env'>, name: 'after-commit' | 'before-ack' | 'broker-before-ack'): void {
  if (ctx.env.COMPANYCTL_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}

/** A line in the JSON app log (secrets removed); best effort. */
export function appLog(ctx: Pick<Context, 'paths' | 'argv'>, entry: AppLogEntry): void {
  writeAppLog(ctx.paths.stateDir, { ...entry, message: redactText(entry.message), command: `companyctl ${redactArgv(ctx.argv)}`.trim() });
}

export interface TestContext extends Context {
  stdout(): string;
  stderr(): string;
}

/** A context whose streams are in memory: for tests of commands and services. */
export function createTestContext(
  opts: { env?: Record<string, string | undefined>; globals?: GlobalOptions; stdin?: string; tty?: boolean; prompter?: Prompter } = {},
): TestContext {
  let out = '';
  let err = '';
  const stdout = new Writable({ write: (chunk, _enc, cb) => ((out += String(chunk)), cb()) });
  const stderr = new Writable({ write: (chunk, _enc, cb) => ((err += String(chunk)), cb()) });
  const stdin = new PassThrough();
  stdin.end(opts.stdin ?? '');
  const tty = opts.tty ?? false;
  const io: IO = { stdin, stdout, stderr, stdinIsTTY: tty, stdoutIsTTY: tty, stderrIsTTY: tty };
  const ctx = createContext(io, opts.env ?? {}, opts.globals ?? {}, opts.prompter) as TestContext;
  ctx.stdout = () => out;
  ctx.stderr = () => err;
  return ctx;
}
