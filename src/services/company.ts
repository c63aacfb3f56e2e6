// Company use cases. Write path: validate -> transaction (row + outbox event) -> commit ->
// invalidate the cache entries touched. Read path: cache -> store on a miss -> fill the cache.
// Services take their dependencies and return data; they never print.
import { describeKey, keysOf, type Company, type CompanyInput, type NaturalKey, SORT_FIELDS, type SortField } from '../domain/company.js';
import { CompanyctlError } from '../errors.js';
import type { CacheTrust, FileCache } from '../infra/cache.js';
import type { Store, StoreTx } from '../infra/db/store.js';
import * as repo from '../infra/db/company-read.js';
import type { CompanyWriter } from '../infra/db/company-write-prepared.js';

// Writes load MikroORM; reads must not (start-up time), hence the lazy import.
const writer = () => import('../infra/db/company-write.js');

export interface CompanyDeps {
  store: () => Promise<Store>;
  cache?: FileCache;
  cacheTtlSeconds: number;
  now: () => Date;
  actor: string;
  /** Told after each commit (and its cache invalidation): the event it raised. */
  committed?: (eventId: number) => void;
  /** How far cache hits are believed (PostgreSQL: longer while this host's worker listens); undefined: until they expire. */
  cacheTrust?: () => CacheTrust | undefined;
}

export interface WriteResult {
  company: Company;
  eventId: number;
}

// ---- cache keys ----

const idKey = (id: number) => `company.id.${id}`;
function aliasKey(key: NaturalKey): string {
  switch (key.kind) {
    case 'id':
      return idKey(key.id);
    case 'domain':
      return `company.domain.${key.domain}`;
    case 'lei':
      return `company.lei.${key.lei}`;
    case 'registration':
      return `company.registration.${key.country}.${key.number}`;
  }
}

/** Every cache key a company is reachable under (id and natural keys). */
export function companyCacheKeys(...companies: (Company | undefined)[]): string[] {
  const keys = new Set<string>();
  for (const c of companies) {
    if (!c) continue;
    keys.add(idKey(c.id));
    for (const k of keysOf(c)) keys.add(aliasKey(k));
  }
  return [...keys];
}

/**
 * Cache a company read from the store. `generation` is the cache's generation taken before that
 * read: a fill older than the last invalidation is discarded, so a stale row never outlives it.
 */
export function fillCompanyCache(cache: FileCache, ttlSeconds: number, c: Company, generation: string): void {
  if (c.deletedAt) return;
  const entries: [string, unknown][] = [[idKey(c.id), c]];
  for (const k of keysOf(c)) entries.push([aliasKey(k), { id: c.id }]);
  cache.fill(entries, ttlSeconds, generation);
}

/**
 * A worker heard that company `id` changed: invalidate this host's entries (a new generation,
 * so a read that began before the change is not cached) and cache what the store holds now.
 */
export function refreshCompanyCache(cache: FileCache, ttlSeconds: number, id: number, current: Company | undefined): void {
  cache.delete([idKey(id), ...(current ? companyCacheKeys(current) : [])]);
  if (!current || current.deletedAt) return;
  cache.set(idKey(id), current, ttlSeconds);
  for (const k of keysOf(current)) cache.set(aliasKey(k), { id }, ttlSeconds);
}

// ---- reads ----

function notFound(key: NaturalKey): CompanyctlError {
  return new CompanyctlError('COMPANYCTL_NOT_FOUND', `no company with ${describeKey(key)}`, {
    hint: 'list companies with "companyctl company list"',
  });
}

/** Get a live company; a cache hit never opens the store. */
export async function getCompany(deps: CompanyDeps, key: NaturalKey, opts: { fresh?: boolean } = {}): Promise<{ company: Company; cached: boolean }> {
  if (deps.cache && !opts.fresh) {
    const trust = deps.cacheTrust?.();
    const id = key.kind === 'id' ? key.id : deps.cache.get<{ id: number }>(aliasKey(key), trust)?.id;
    const hit = id === undefined ? undefined : deps.cache.get<Company>(idKey(id), trust);
    if (hit && matchesKey(hit, key)) {
      deps.cache.record('hit');
      return { company: hit, cached: true };
    }
    deps.cache.record('miss');
  }
  const generation = deps.cache?.generation();
  const store = await deps.store();
  const company = await repo.findCompany(store.read, key);
  if (!company) throw notFound(key);
  if (company.deletedAt) {
    throw new CompanyctlError('COMPANYCTL_NOT_FOUND', `company ${company.id} is deleted (since ${company.deletedAt})`, {
      hint: `restore it with "companyctl company restore ${company.id}"`,
      data: { id: company.id, deletedAt: company.deletedAt },
    });
  }
  if (deps.cache && generation !== undefined) fillCompanyCache(deps.cache, deps.cacheTtlSeconds, company, generation);
  return { company, cached: false };
}

function matchesKey(c: Company, key: NaturalKey): boolean {
  return key.kind === 'id' ? c.id === key.id : keysOf(c).some((k) => aliasKey(k) === aliasKey(key));
}

export interface ListOptions {
  filter: repo.CompanyFilter;
  sort: SortField;
  descending: boolean;
  /** Page size; undefined means every matching company (streamed page by page). */
  limit?: number;
  cursor?: string;
  /** False when --sort was not given: a cursor then brings its own sort. */
  sortGiven?: boolean;
}

const PAGE = 1000;

/** Yields matching companies page by page (constant memory), and the cursor after the last one. */
export async function* listCompanies(deps: CompanyDeps, opts: ListOptions): AsyncGenerator<Company, string | null> {
  const store = await deps.store();
  if (opts.cursor && opts.sortGiven === false) {
    const own = cursorSort(opts.cursor);
    opts = { ...opts, sort: own.sort, descending: own.descending };
  }
  let after = opts.cursor ? decodeCursor(opts.cursor, opts.sort, opts.descending) : undefined;
  let remaining = opts.limit ?? Infinity;
  while (remaining > 0) {
    const want = Math.min(PAGE, remaining);
    const page = await repo.listCompanies(store.read, store.dialect, opts.filter, {
      sort: opts.sort,
      descending: opts.descending,
      limit: want + 1,
      after,
    });
    const items = page.slice(0, want);
    for (const c of items) yield c;
    remaining -= items.length;
    const last = items[items.length - 1];
    if (page.length <= want || !last) return null;
    after = { value: sortValue(last, opts.sort), id: last.id };
    if (remaining <= 0) return encodeCursor(opts.sort, opts.descending, after);
  }
  return null;
}

function sortValue(c: Company, sort: SortField): string | number {
  return sort === 'id' ? c.id : c[sort];
}

function encodeCursor(sort: string, desc: boolean, after: { value: string | number; id: number }): string {
  return Buffer.from(JSON.stringify({ s: sort, d: desc, v: after.value, i: after.id })).toString('base64url');
}

/** The sort a cursor was made for (a cursor carries it, so the next page needs no --sort). */
function cursorSort(cursor: string): { sort: SortField; descending: boolean } {
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { s: unknown; d: unknown };
    if ((SORT_FIELDS as readonly unknown[]).includes(c.s) && typeof c.d === 'boolean') return { sort: c.s as SortField, descending: c.d };
  } catch {
    // reported below, as for any cursor that is not ours
  }
  throw new CompanyctlError('COMPANYCTL_USAGE', '--cursor: not a cursor printed by "company list"', { field: '--cursor' });
}

function decodeCursor(cursor: string, sort: string, desc: boolean): { value: string | number; id: number } {
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { s: string; d: boolean; v: string | number; i: number };
    if (c.s !== sort || c.d !== desc) {
      throw new CompanyctlError('COMPANYCTL_USAGE', `--cursor: this cursor belongs to --sort ${c.d ? '-' : ''}${c.s}`, { field: '--cursor' });
    }
    if (typeof c.i !== 'number' || (typeof c.v !== 'string' && typeof c.v !== 'number')) throw new Error('shape');
    return { value: c.v, id: c.i };
  } catch (e) {
    if (e instanceof CompanyctlError) throw e;
    throw new CompanyctlError('COMPANYCTL_USAGE', '--cursor: not a cursor printed by "company list"', { field: '--cursor' });
  }
}

// ---- writes ----

async function assertKeysFree(tx: StoreTx, input: CompanyInput, exceptId?: number): Promise<void> {
  const holders = await repo.findKeyHolders(tx.read, keysOf(input), input.externalIds, exceptId);
  const h = holders[0];
  if (!h) return;
  throw new CompanyctlError(
    'COMPANYCTL_DUPLICATE_KEY',
    `${h.key} is already held by ${h.deleted ? 'deleted ' : ''}company ${h.companyId}`,
    {
      hint: h.deleted
        ? `restore company ${h.companyId} ("companyctl company restore ${h.companyId}") or remove it for good ("companyctl company delete ${h.companyId} --hard")`
        : `update company ${h.companyId} instead ("companyctl company update ${h.companyId} ...")`,
      data: { key: h.key, companyId: h.companyId },
    },
  );
}

/** Unique-index violations that slipped past the pre-check (a concurrent writer) become typed errors. */
function duplicateFromDriver(e: unknown): unknown {
  const name = (e as Error)?.name ?? '';
  if (name === 'UniqueConstraintViolationException' || /UNIQUE constraint failed|duplicate key value/i.test(String((e as Error)?.message))) {
    return new CompanyctlError('COMPANYCTL_DUPLICATE_KEY', 'another company now holds one of these keys (domain, LEI, registration or external id)', {
      hint: 'another writer got there first; run the command again to see which company',
      cause: e,
    });
  }
  return e;
}

export interface Written {
  company: Company;
  before?: Company;
  /** The state after the write for the event; null when the row is gone (hard delete). */
  after?: Company | null;
  eventType: string;
}

export type Writer = CompanyWriter;

/** What a write attempts, for the failure event when it rolls back. */
interface Intent {
  operation: 'company.created' | 'company.updated' | 'company.deleted' | 'company.restored';
  key?: NaturalKey;
}

async function write(deps: CompanyDeps, intent: Intent, fn: WriteBody): Promise<WriteResult & { before?: Company }> {
  const store = await deps.store();
  let result: WriteResult & { before?: Company; company: Company } | undefined;
  try {
    result = (await store.transaction((tx) => writeInTransaction(tx, deps, fn)))!;
  } catch (e) {
    const err = duplicateFromDriver(e);
    await recordWriteFailure(deps, store, await writer(), intent, err);
    throw err;
  }
  afterCommit(deps, result);
  return { company: result.company, before: result.before, eventId: result.eventId };
}

type WriteBody = (tx: StoreTx, now: string, w: Writer) => Promise<Written>;

/**
 * One company write and its outbox event, inside the caller's transaction (batches share one).
 * A body that returns undefined wrote nothing: no event.
 */
export async function writeInTransaction(
  tx: StoreTx,
  deps: Pick<CompanyDeps, 'now' | 'actor'>,
  fn: (tx: StoreTx, now: string, w: Writer) => Promise<Written | undefined>,
  using?: CompanyWriter,
): Promise<(WriteResult & { before?: Company }) | undefined> {
  const w = using ?? (await writer());
  const now = deps.now().toISOString();
  const r = await fn(tx, now, w);
  if (!r) return undefined;
  const eventId = await w.insertOutboxEvent(tx, {
    type: r.eventType,
    companyId: r.company.id,
    actor: deps.actor,
    payload: { before: r.before ?? null, after: r.after === undefined ? r.company : r.after },
    createdAt: now,
  });
  return { company: r.company, before: r.before, eventId };
}

/** After commit: what the writes touched must not be served stale (one invalidation for a whole batch). */
export function afterCommit(deps: Pick<CompanyDeps, 'cache' | 'committed'>, ...results: (WriteResult & { before?: Company })[]): void {
  deps.cache?.delete(companyCacheKeys(...results.flatMap((r) => [r.company, r.before])));
  for (const r of results) deps.committed?.(r.eventId);
}

/**
 * The transaction rolled back; its failure is recorded in a transaction of its own (so it
 * reaches the audit log). Best effort: the caller's error is what the user sees.
 */
async function recordWriteFailure(deps: CompanyDeps, store: Store, w: Writer, intent: Intent, err: unknown): Promise<void> {
  if (err === UNCHANGED) return;
  const code = err instanceof CompanyctlError ? err.code : 'COMPANYCTL_INTERNAL';
  // The store itself is what failed: there is nowhere to record it (the app log has it).
  if (code === 'COMPANYCTL_STORE_BUSY' || code === 'COMPANYCTL_STORE_UNAVAILABLE') return;
  const message = String((err as Error)?.message ?? err).split('\n')[0];
  try {
    await store.transaction(async (tx) => {
      const now = deps.now().toISOString();
      await w.insertOutboxEvent(tx, {
        type: 'company.write_failed',
        companyId: intent.key?.kind === 'id' ? intent.key.id : null,
        actor: deps.actor,
        payload: { operation: intent.operation, target: intent.key ? describeKey(intent.key) : null, error: { code, message } },
        createdAt: now,
      });
    });
  } catch {
    // see above
  }
}

export async function createCompany(deps: CompanyDeps, input: CompanyInput): Promise<WriteResult> {
  return write(deps, { operation: 'company.created' }, (tx, now, w) => createBody(tx, now, w, input));
}

export const createBody = async (tx: StoreTx, now: string, w: Writer, input: CompanyInput): Promise<Written> => {
  await assertKeysFree(tx, input);
  const id = await w.insertCompany(tx, input, now);
  const company = await repo.findCompany(tx.read, { kind: 'id', id });
  return { company: company!, eventType: 'company.created' };
};

async function loadForWrite(tx: StoreTx, key: NaturalKey, ifVersion: number | undefined, opts: { deleted?: boolean } = {}): Promise<Company> {
  const current = await repo.findCompany(tx.read, key);
  if (!current) throw notFound(key);
  if (!opts.deleted && current.deletedAt) {
    throw new CompanyctlError('COMPANYCTL_NOT_FOUND', `company ${current.id} is deleted`, { hint: `restore it first: "companyctl company restore ${current.id}"` });
  }
  if (ifVersion !== undefined && current.version !== ifVersion) {
    throw new CompanyctlError('COMPANYCTL_VERSION_CONFLICT', `company ${current.id} is at version ${current.version}, not ${ifVersion}`, {
      hint: `run "companyctl company get ${current.id} --fresh" and apply your change to version ${current.version}`,
      data: { id: current.id, version: current.version, expectedVersion: ifVersion },
    });
  }
  return current;
}

/** Apply a validated patch. With no effective change, nothing is written and no event is raised. */
export async function updateCompany(
  deps: CompanyDeps,
  key: NaturalKey,
  patch: Partial<CompanyInput>,
  opts: {
    ifVersion?: number;
    /** Runs inside the write's transaction after the row changed (e.g. enrichment provenance). */
    inTransaction?: (tx: StoreTx, company: Company, before: Company) => Promise<void>;
  } = {},
): Promise<WriteResult & { changed: boolean }> {
  let unchanged: Company | undefined;
  // zod is ~50 ms to load: only the update path needs it here, never a read.
  const { completeCompany } = await import('../domain/validate.js');
  try {
    const r = await write(deps, { operation: 'company.updated', key }, async (tx, now, w) => {
      const before = await loadForWrite(tx, key, opts.ifVersion);
      const written = await updateBody(tx, now, w, before, patch, completeCompany, opts.inTransaction);
      if (!written) {
        unchanged = before;
        throw UNCHANGED;
      }
      return written;
    });
    return { ...r, changed: true };
  } catch (e) {
    if (e === UNCHANGED && unchanged) return { company: unchanged, eventId: 0, changed: false };
    throw e;
  }
}

/** Apply a validated patch to a loaded company; undefined when it changes nothing. */
export async function updateBody(
  tx: StoreTx,
  now: string,
  w: Writer,
  before: Company,
  patch: Partial<CompanyInput>,
  complete: typeof import('../domain/validate.js').completeCompany,
  inTransaction?: (tx: StoreTx, company: Company, before: Company) => Promise<void>,
): Promise<Written | undefined> {
  const next = complete(patch, before);
  if (sameInput(before, next)) return undefined;
  await assertKeysFree(tx, next, before.id);
  await w.updateCompany(tx, before.id, before.version, next, now);
  const company = await repo.findCompany(tx.read, { kind: 'id', id: before.id });
  await inTransaction?.(tx, company!, before);
  return { company: company!, before, eventType: 'company.updated' };
}
const UNCHANGED = Symbol('unchanged');

function sameInput(a: CompanyInput, b: CompanyInput): boolean {
  return (Object.keys(b) as (keyof CompanyInput)[]).every((k) => JSON.stringify(a[k] ?? null) === JSON.stringify(b[k] ?? null));
}

export async function deleteCompany(deps: CompanyDeps, key: NaturalKey, opts: { hard?: boolean; ifVersion?: number } = {}): Promise<WriteResult & { hard: boolean }> {
  const r = await write(deps, { operation: 'company.deleted', key }, async (tx, now, w) => {
    const before = await loadForWrite(tx, key, opts.ifVersion, { deleted: opts.hard });
    return deleteBody(tx, now, w, before, !!opts.hard);
  });
  return { ...r, hard: !!opts.hard };
}

export async function deleteBody(tx: StoreTx, now: string, w: Writer, before: Company, hard: boolean): Promise<Written> {
  if (hard) {
    await w.hardDeleteCompany(tx, before.id, before.version);
    return { company: before, before, after: null, eventType: 'company.deleted' };
  }
  await w.setDeleted(tx, before.id, before.version, now, now);
  const company = await repo.findCompany(tx.read, { kind: 'id', id: before.id });
  return { company: company!, before, eventType: 'company.deleted' };
}

/** Restore a soft-deleted company named by id or by any key get takes (the deleted holder of that key). */
export async function restoreCompany(deps: CompanyDeps, ref: number | NaturalKey): Promise<WriteResult> {
  const key: NaturalKey = typeof ref === 'number' ? { kind: 'id', id: ref } : ref;
  return write(deps, { operation: 'company.restored', key }, async (tx, now, w) => {
    let before: Company | undefined;
    if (key.kind === 'id') before = await repo.findCompany(tx.read, key);
    else {
      const deleted = await repo.findDeletedCompanies(tx.read, key);
      if (deleted.length > 1) {
        throw new CompanyctlError('COMPANYCTL_USAGE', `${deleted.length} deleted companies hold ${describeKey(key)}: ids ${deleted.map((c) => c.id).join(', ')}`, {
          field: '<ref>',
          hint: `restore one by its id, e.g. "companyctl company restore ${deleted[0]!.id}"`,
          data: { ids: deleted.map((c) => c.id) },
        });
      }
      before = deleted[0] ?? (await repo.findCompany(tx.read, key));
    }
    if (!before) throw notFound(key);
    const id = before.id;
    if (!before.deletedAt) {
      throw new CompanyctlError('COMPANYCTL_NOT_DELETED', `company ${id} is not deleted`, { data: { id } });
    }
    await assertKeysFree(tx, before, id);
    await w.setDeleted(tx, id, before.version, null, now);
    const company = await repo.findCompany(tx.read, { kind: 'id', id });
    return { company: company!, before, eventType: 'company.restored' };
  });
}
