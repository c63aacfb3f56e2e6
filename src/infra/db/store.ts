// The one place that opens the store: SQLite (default) or PostgreSQL, same schema names.
// Reads on SQLite go through a raw better-sqlite3 connection (no ORM load: ~60 ms vs ~290 ms
// cold start, see PERF notes); writes and migrations go through MikroORM, loaded on demand.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EntityManager, MikroORM, Options } from '@mikro-orm/core';
import { CompanyctlError, diskFullError } from '../../errors.js';
import { ensurePrivateDir } from '../paths.js';
import type { StoreLocation } from './location.js';
import { KNOWN_MIGRATIONS, type Dialect } from './migrations/names.js';

export type { Dialect, StoreLocation };
export type Row = Record<string, unknown>;

/** Runs SQL with `?` placeholders and returns rows. */
export interface SqlReader {
  all<T = Row>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface StoreTx {
  dialect: Dialect;
  em: EntityManager;
  /** Reads inside the transaction (they see its own uncommitted writes). */
  read: SqlReader;
}

export interface Store {
  location: StoreLocation;
  dialect: Dialect;
  read: SqlReader;
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Runs a statement inside the transaction; returns the rows (with RETURNING) and how many rows changed. */
export async function runSql(tx: StoreTx, sql: string, params: unknown[] = []): Promise<{ rows: Row[]; changes: number }> {
  const r = (await tx.em.getConnection().execute(sql, params, /^\s*select|returning/i.test(sql) ? 'all' : 'run', tx.em.getTransactionContext())) as
    | Row[]
    | { affectedRows?: number; changes?: number; rows?: Row[] };
  if (Array.isArray(r)) return { rows: r, changes: r.length };
  return { rows: r.rows ?? [], changes: Number(r.affectedRows ?? r.changes ?? 0) };
}

export interface SchemaStatus {
  initialised: boolean;
  applied: string[];
  pending: string[];
  /** Applied migrations this code does not know: the store is newer than the code. */
  unknown: string[];
}

const MIGRATIONS_TABLE = 'companyctl_migrations';

const notInitialised = (loc: StoreLocation) =>
  new CompanyctlError('COMPANYCTL_STORE_NOT_INITIALISED', `no companyctl store at ${loc.display}`, {
    hint: 'run "companyctl init" to create it, or pass --db / COMPANYCTL_DB',
  });

/**
 * Open an initialised store whose schema matches this code; `pendingOk` lets `db migrate` open
 * an older one (to authenticate its caller) before it migrates.
 */
export async function openStore(loc: StoreLocation, opts: { pendingOk?: boolean } = {}): Promise<Store> {
  const store = loc.dialect === 'sqlite' ? await openSqlite(loc) : await openPostgres(loc);
  try {
    const status = await readSchemaStatus(store.read);
    assertSchemaCurrent(loc, opts.pendingOk ? { ...status, pending: [] } : status);
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}

export function assertSchemaCurrent(loc: StoreLocation, status: SchemaStatus): void {
  if (!status.initialised) throw notInitialised(loc);
  if (status.unknown.length > 0) {
    throw new CompanyctlError(
      'COMPANYCTL_SCHEMA_TOO_NEW',
      `the store at ${loc.display} has schema migrations this companyctl does not know (${status.unknown.join(', ')})`,
      { hint: 'upgrade companyctl; an older version must not write to a newer store' },
    );
  }
  if (status.pending.length > 0) {
    throw new CompanyctlError('COMPANYCTL_SCHEMA_OUTDATED', `the store at ${loc.display} needs migrations: ${status.pending.join(', ')}`, {
      hint: 'run "companyctl db migrate"',
    });
  }
}

export async function readSchemaStatus(read: SqlReader): Promise<SchemaStatus> {
  let applied: string[];
  try {
    applied = (await read.all<{ name: string }>(`select name from ${MIGRATIONS_TABLE} order by id`)).map((r) => r.name);
  } catch (e) {
    if (/no such table|does not exist/i.test(String((e as Error).message))) {
      return { initialised: false, applied: [], pending: [...KNOWN_MIGRATIONS], unknown: [] };
    }
    throw e;
  }
  const known = new Set<string>(KNOWN_MIGRATIONS);
  const done = new Set(applied);
  return {
    initialised: applied.length > 0,
    applied,
    pending: KNOWN_MIGRATIONS.filter((m) => !done.has(m)),
    unknown: applied.filter((m) => !known.has(m)),
  };
}

/** Create the store if needed and apply pending migrations. Returns the names applied now. */
export async function migrateStore(loc: StoreLocation): Promise<{ applied: string[]; storeId: string }> {
  if (loc.dialect === 'sqlite') createSqliteFile(loc.target);
  const orm = await initOrm(loc, true);
  try {
    const read = ormReader(orm.em.fork());
    const status = await readSchemaStatus(read);
    assertSchemaCurrent(loc, { ...status, pending: [], initialised: true });
    if (status.applied.length > 0) {
      // A bulk import killed before its end left the secondary indexes dropped: build them
      // first (a later migration may expect them).
      const { deferredBy, restoreIndexes } = await import('./import-indexes.js');
      if ((await deferredBy(read)) !== undefined) await runTransaction(loc, orm, (tx) => restoreIndexes(tx));
    }
    const migrator = orm.getMigrator();
    const done = await migrator.up();
    const em = orm.em.fork();
    const { StoreMetaEntity } = await import('./entities.js');
    let meta = await em.findOne(StoreMetaEntity, { key: 'store_id' });
    if (!meta) {
      meta = em.create(StoreMetaEntity, { key: 'store_id', value: randomUUID() });
      em.create(StoreMetaEntity, { key: 'created_at', value: new Date().toISOString() });
    }
    if (!(await em.findOne(StoreMetaEntity, { key: 'jwt_public_key' }))) {
      // The store's token-signing key pair (Ed25519). The private half never leaves the store.
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      em.create(StoreMetaEntity, { key: 'jwt_private_key', value: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() });
      em.create(StoreMetaEntity, { key: 'jwt_public_key', value: publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    }
    await em.flush();
    return { applied: done.map((m) => m.name), storeId: meta.value };
  } catch (e) {
    throw toStoreError(loc, e);
  } finally {
    await orm.close();
  }
}

/** Schema status without failing on an old or new schema (for `db status`). */
export async function inspectStore(loc: StoreLocation): Promise<SchemaStatus> {
  if (loc.dialect === 'sqlite' && !existsSync(loc.target)) {
    return { initialised: false, applied: [], pending: [...KNOWN_MIGRATIONS], unknown: [] };
  }
  const store = loc.dialect === 'sqlite' ? await openSqlite(loc) : await openPostgres(loc);
  try {
    return await readSchemaStatus(store.read);
  } finally {
    await store.close();
  }
}

function createSqliteFile(path: string): void {
  // A folder we create is 0700; an existing one the user chose (--db ./x.db) keeps its mode.
  if (!existsSync(dirname(path))) ensurePrivateDir(dirname(path));
  closeSync(openSync(path, 'a', 0o600));
  chmodSync(path, 0o600);
}

async function openSqlite(loc: StoreLocation): Promise<Store> {
  if (!existsSync(loc.target)) throw notInitialised(loc);
  const { default: Database } = await import('better-sqlite3');
  let db: import('better-sqlite3').Database;
  try {
    db = new Database(loc.target, { fileMustExist: true });
    db.pragma('busy_timeout = 5000');
  } catch (e) {
    throw toStoreError(loc, e);
  }
  const statements = new Map<string, import('better-sqlite3').Statement>();
  const read: SqlReader = {
    async all<T>(sql: string, params: unknown[] = []) {
      let st = statements.get(sql);
      if (!st) {
        st = db.prepare(sql);
        statements.set(sql, st);
      }
      return st.all(...params) as T[];
    },
  };
  let orm: MikroORM | undefined;
  return {
    location: loc,
    dialect: 'sqlite',
    read,
    async transaction(fn) {
      orm ??= await initOrm(loc, false);
      return runTransaction(loc, orm, fn);
    },
    async close() {
      await orm?.close();
      db.close();
    },
  };
}

async function openPostgres(loc: StoreLocation): Promise<Store> {
  // Reads run on a raw pg connection (no ORM load: a cold `company get --fresh` pays for pg
  // alone); MikroORM is initialised on the first transaction only.
  const read = await openPgReader(loc);
  let orm: Promise<MikroORM> | undefined;
  return {
    location: loc,
    dialect: 'postgresql',
    read: read.reader,
    async transaction(fn) {
      orm ??= initOrm(loc, false);
      orm.catch(() => (orm = undefined));
      return runTransaction(loc, await orm, fn);
    },
    async close() {
      const o = orm;
      orm = undefined;
      await Promise.all([read.close(), o?.then((x) => x.close()).catch(() => undefined)]);
    },
  };
}

/** `?` placeholders (outside quoted strings) -> `$1, $2, ...`, as knex does for MikroORM's execute. */
export function pgPlaceholders(sql: string): string {
  let n = 0;
  let quoted = false;
  let out = '';
  for (const ch of sql) {
    if (ch === "'") quoted = !quoted;
    out += ch === '?' && !quoted ? `$${++n}` : ch;
  }
  return out;
}

/**
 * A plain pg client for reads, with MikroORM's type parsing (dates and timestamps as text),
 * so rows look the same whichever path read them.
 */
export async function openPgClient(loc: StoreLocation): Promise<import('pg').Client> {
  const { default: pg } = await import('pg');
  const types = new pg.TypeOverrides();
  for (const oid of [1082, 1114, 1184, 1186]) types.setTypeParser(oid, (v: string) => v);
  const client = new pg.Client({ connectionString: loc.target, types });
  // A server gone mid-session is reported by the next query; an unhandled 'error' event would crash.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw toStoreError(loc, e);
  }
  return client;
}

async function openPgReader(loc: StoreLocation): Promise<{ reader: SqlReader; close: () => Promise<void> }> {
  const client = await openPgClient(loc);
  const text = new Map<string, string>();
  return {
    reader: {
      async all<T>(sql: string, params: unknown[] = []) {
        let q = text.get(sql);
        if (q === undefined) text.set(sql, (q = pgPlaceholders(sql)));
        try {
          return (await client.query(q, params)).rows as T[];
        } catch (e) {
          throw toStoreError(loc, e);
        }
      },
    },
    close: () => client.end().catch(() => undefined),
  };
}

function ormReader(em: EntityManager): SqlReader {
  return {
    all: async <T>(sql: string, params: unknown[] = []) => (await em.getConnection().execute(sql, params, 'all', em.getTransactionContext())) as T[],
  };
}

async function runTransaction<T>(loc: StoreLocation, orm: MikroORM, fn: (tx: StoreTx) => Promise<T>): Promise<T> {
  try {
    return await orm.em.fork().transactional(async (em) => {
      // Take SQLite's write lock first, so a concurrent writer waits (busy_timeout) rather than
      // failing later when a read transaction tries to upgrade.
      if (loc.dialect === 'sqlite') await em.getConnection().execute(`update store_meta set value = value where 0`, [], 'run', em.getTransactionContext());
      return fn({ dialect: loc.dialect, em, read: ormReader(em) });
    });
  } catch (e) {
    throw toStoreError(loc, e);
  }
}

async function initOrm(loc: StoreLocation, withMigrator: boolean): Promise<MikroORM> {
  const { ENTITIES } = await import('./entities.js');
  const common: Options = {
    entities: ENTITIES,
    discovery: { disableDynamicFileAccess: true, requireEntitiesArray: true },
    debug: false,
    allowGlobalContext: false,
    forceUndefined: false,
  };
  if (withMigrator) {
    const { Migrator } = await import('@mikro-orm/migrations');
    const { migrationsFor } = await import('./migrations/index.js');
    common.extensions = [Migrator];
    common.migrations = {
      tableName: MIGRATIONS_TABLE,
      migrationsList: migrationsFor(loc.dialect),
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      silent: true,
    };
  }
  try {
    if (loc.dialect === 'sqlite') {
      const [{ MikroORM }, { SqliteDriver }] = await Promise.all([import('@mikro-orm/core'), import('./sqlite-driver.js')]);
      return await MikroORM.init({
        ...common,
        driver: SqliteDriver,
        dbName: loc.target,
        pool: {
          afterCreate: (conn: import('better-sqlite3').Database, done: (err: Error | null, conn: unknown) => void) => {
            try {
              conn.pragma('journal_mode = WAL');
              conn.pragma('synchronous = NORMAL');
              conn.pragma('busy_timeout = 5000');
              conn.pragma('foreign_keys = ON');
              done(null, conn);
            } catch (e) {
              done(e as Error, conn);
            }
          },
        },
      } as Options);
    }
    const pg = await import('pg');
    // DATE columns as 'YYYY-MM-DD' strings, not local-midnight Date objects.
    pg.default.types.setTypeParser(1082, (v: string) => v);
    const { MikroORM } = await import('@mikro-orm/postgresql');
    const orm = await MikroORM.init({ ...common, clientUrl: loc.target } as Options);
    await orm.em.getConnection().execute('select 1');
    return orm;
  } catch (e) {
    throw toStoreError(loc, e);
  }
}

/**
 * Driver errors -> typed errors. Connection strings, SQL text and the values in it (which can
 * be password hashes or company data) never reach the message: only the driver's own reason.
 */
export function toStoreError(loc: StoreLocation, e: unknown): unknown {
  if (e instanceof CompanyctlError) return e;
  const err = e as { code?: string; message?: string; name?: string };
  const msg = String(err?.message ?? e);
  // knex prefixes the failing statement: "<sql> - <reason>".
  const reason = (msg.includes(' - ') ? msg.slice(msg.lastIndexOf(' - ') + 3) : msg).split('\n')[0]!.replaceAll(loc.target, loc.display);
  const full = diskFullError(e);
  if (full) return full;
  if (/SQLITE_BUSY|database is locked/i.test(msg) || err?.code === 'SQLITE_BUSY') {
    return new CompanyctlError('COMPANYCTL_STORE_BUSY', `the store at ${loc.display} is busy (another companyctl is writing)`, {
      hint: 'try again in a moment',
      cause: e,
    });
  }
  if (err?.name === 'UniqueConstraintViolationException' || /UNIQUE constraint failed|duplicate key value/i.test(msg)) {
    return new CompanyctlError('COMPANYCTL_DUPLICATE_KEY', `another record already holds this key (${reason.replace(/\(.*\)=\(.*\)/, '')})`, {
      hint: 'another writer may have got there first; run the command again to see which record',
      cause: e,
    });
  }
  if (/ECONNREFUSED|ENOTFOUND|password authentication|does not exist|SQLITE_CANTOPEN|SQLITE_NOTADB|EACCES|unable to open|file is not a database/i.test(msg) && !/relation|column/i.test(msg)) {
    return new CompanyctlError('COMPANYCTL_STORE_UNAVAILABLE', `cannot open the store at ${loc.display}: ${reason}`, {
      hint: 'check --db / COMPANYCTL_DB, that the server runs, and the file permissions',
      cause: e,
    });
  }
  const isDriverError = /Exception$|SqliteError|DatabaseError/.test(err?.name ?? '') || /^SQLITE_|^[0-9A-Z]{5}$/.test(err?.code ?? '');
  if (isDriverError) {
    return new CompanyctlError('COMPANYCTL_INTERNAL', `internal error: the store refused the operation (${err.code ?? err.name}: ${reason})`, {
      hint: 'run again with --debug for details, and report it with the command you ran',
      cause: e,
    });
  }
  return e;
}
