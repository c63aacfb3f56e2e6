// `companyctl enrich`: ask a company-data HTTP API about selected companies and fill in what is
// missing. Politely: one p-queue limits concurrency and rate (every attempt, retries included),
// each attempt has a timeout, retries back off with jitter and honour Retry-After. Reliably:
// the selection is snapshotted into a run (one row per company), each company's result is
// committed together with its checkpoint, so a killed run resumes without repeating finished
// companies. Results go through the normal company write path (validation, outbox event,
// cache invalidation); values someone set by hand are kept unless `overwrite`.
import { createHash } from 'node:crypto';
import PQueue from 'p-queue';
import type { Company, CompanyInput } from '../domain/company.js';
import { CompanyctlError, isCompanyctlError, ValidationError } from '../errors.js';
import type { FileCache } from '../infra/cache.js';
import type { StoreTx } from '../infra/db/store.js';
import * as runs from '../infra/db/enrich-runs.js';
import { findCompany } from '../infra/db/company-read.js';
import { HttpFailure, requestWithRetry } from '../infra/http.js';
import { lockOwnerProcess, newLockOwner } from '../infra/run-lock.js';
import { listCompanies, updateCompany, type CompanyDeps, type ListOptions } from './company.js';
import { requestPathFor, type EnrichConfig, type EnrichField } from './enrich-config.js';

export interface EnrichDeps {
  company: CompanyDeps;
  config: EnrichConfig;
  /** The API key, already resolved (environment or keychain); never logged or cached. */
  apiKey?: string;
  /** The response cache; undefined with --no-cache. */
  cache?: FileCache;
  progress?: EnrichProgress;
  signal?: AbortSignal;
  /** Seconds after which another process's lock counts as abandoned. */
  staleLockSeconds?: number;
  heartbeatMs?: number;
}

export interface EnrichSelection {
  /** Filters (as `company list` understands them), or undefined when `ids` is given. */
  list?: ListOptions;
  ids?: number[];
  /** The flags as typed: a re-run of the same command finds its unfinished run by them. */
  raw: Record<string, unknown>;
}

export interface EnrichOptions {
  overwrite?: boolean;
  /** Only companies with at least one empty mapped field. */
  onlyMissing?: boolean;
  /** Ignore cached responses (they are still refreshed). */
  refresh?: boolean;
  /** Abandon an unfinished run of the same selection and start afresh. */
  restart?: boolean;
}

export interface EnrichCounts {
  enriched: number;
  unchanged: number;
  notFound: number;
  failed: number;
  skipped: number;
  pending: number;
}

export interface EnrichProgress {
  start(info: { runId: number; total: number; done: number; resumed: boolean }): void;
  update(counts: EnrichCounts & { done: number; requests: number; cacheHits: number }): void;
  stop(): void;
}

export interface EnrichFailure {
  companyId: number;
  code: string;
  message: string;
  status?: number;
}

export interface EnrichSummary extends EnrichCounts {
  runId: number;
  state: runs.EnrichRunState;
  resumed: boolean;
  total: number;
  /** Companies already finished by an earlier (killed or cancelled) invocation of this run. */
  alreadyDone: number;
  /** HTTP attempts made by this invocation, retries included. */
  requests: number;
  retries: number;
  cacheHits: number;
  failures: EnrichFailure[];
}

interface ItemDetail {
  fields?: string[];
  kept?: string[];
  invalid?: { field: string; message: string }[];
  reason?: string;
  code?: string;
  message?: string;
  status?: number;
}

const RESPONSE_KEY = (url: string) => `enrich.response.${createHash('sha256').update(url).digest('hex').slice(0, 40)}`;

interface CachedResponse {
  status: number;
  body: unknown;
}

export function selectionIdentity(selection: EnrichSelection, opts: EnrichOptions): string {
  const doc = { selection: selection.raw, overwrite: !!opts.overwrite, onlyMissing: !!opts.onlyMissing };
  return createHash('sha256').update(JSON.stringify(doc)).digest('hex');
}

export async function enrichCompanies(deps: EnrichDeps, selection: EnrichSelection, opts: EnrichOptions = {}): Promise<EnrichSummary> {
  const store = await deps.company.store();
  const cfg = deps.config;
  const now = () => deps.company.now().toISOString();
  const owner = newLockOwner();
  const identity = selectionIdentity(selection, opts);

  // ---- find or create the run ----
  let existing = await runs.findUnfinishedRun(store.read, identity);
  if (existing && opts.restart) {
    const old = existing;
    await store.transaction((tx) => runs.abandonRun(tx, old.id, now()));
    existing = undefined;
  }
  let runId: number;
  let resumed = false;
  if (existing) {
    const run = existing;
    const staleBefore = new Date(deps.company.now().getTime() - (deps.staleLockSeconds ?? 60) * 1000).toISOString();
    const claimed = await store.transaction((tx) => runs.claimRun(tx, run.id, owner, now(), staleBefore, lockOwnerProcess(run.lockOwner) === 'dead' ? run.lockOwner : null));
    if (!claimed) throw locked(run);
    runId = run.id;
    resumed = true;
  } else {
    const ids = selection.ids ?? (await collectIds(deps.company, selection.list!));
    try {
      runId = await store.transaction(async (tx) => {
        const id = await runs.createRun(tx, { identity, selection: { ...selection.raw, overwrite: !!opts.overwrite, onlyMissing: !!opts.onlyMissing }, owner, actor: deps.company.actor, now: now() });
        await runs.addItems(tx, id, ids);
        await runs.setTotal(tx, id);
        return id;
      });
    } catch (e) {
      const other = await runs.findUnfinishedRun(store.read, identity);
      if (other) throw locked(other);
      throw e;
    }
  }

  const startCounts = await runs.itemCounts(store.read, runId);
  const total = Object.values(startCounts).reduce((a, b) => a + b, 0);
  const alreadyDone = total - startCounts.pending;
  const counts: EnrichCounts = {
    enriched: startCounts.enriched,
    unchanged: startCounts.unchanged,
    notFound: startCounts.not_found,
    failed: startCounts.failed,
    skipped: startCounts.skipped,
    pending: startCounts.pending,
  };
  const stats = { requests: 0, retries: 0, cacheHits: 0, done: 0 };
  const flushed = { requests: 0, cacheHits: 0 };
  const delta = () => {
    const d = { requests: stats.requests - flushed.requests, cacheHits: stats.cacheHits - flushed.cacheHits };
    flushed.requests = stats.requests;
    flushed.cacheHits = stats.cacheHits;
    return d;
  };

  // ---- the queues ----
  const http = new PQueue({ concurrency: cfg.concurrency, intervalCap: cfg.rate.requests, interval: cfg.rate.perMs, strict: true });
  const writes = new PQueue({ concurrency: 1 }); // one writer: SQLite has one anyway, and it keeps PostgreSQL calm
  const work = new PQueue({ concurrency: cfg.concurrency * 2 });
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'companyctl/0.1.0 (enrich)' };
  if (cfg.auth && deps.apiKey) headers[cfg.auth.header.toLowerCase()] = cfg.auth.scheme ? `${cfg.auth.scheme} ${deps.apiKey}` : deps.apiKey;
  const mapped = Object.keys(cfg.fields) as EnrichField[];
  const companyDeps: CompanyDeps = { ...deps.company, actor: `${deps.company.actor} (enrich run ${runId})` };
  const { parseCompanyPatch } = await import('../domain/validate.js');

  let fatal: unknown;
  const stop = () => fatal !== undefined || deps.signal?.aborted === true;

  const record = (companyId: number, status: runs.EnrichItemStatus, detail: ItemDetail | undefined, tx?: StoreTx) => {
    const mark = (t: StoreTx) => runs.markItem(t, runId, companyId, status, detail, now());
    return tx ? mark(tx) : writes.add(() => store.transaction(mark));
  };
  const finish = (status: runs.EnrichItemStatus) => {
    counts.pending--;
    stats.done++;
    if (status === 'enriched') counts.enriched++;
    else if (status === 'unchanged') counts.unchanged++;
    else if (status === 'not_found') counts.notFound++;
    else if (status === 'failed') counts.failed++;
    else if (status === 'skipped') counts.skipped++;
    deps.progress?.update({ ...counts, done: alreadyDone + stats.done, requests: stats.requests, cacheHits: stats.cacheHits });
  };

  /** The API's answer for one URL: from the cache, or asked (and then cached). */
  const lookup = async (url: string): Promise<CachedResponse> => {
    const key = RESPONSE_KEY(url);
    if (deps.cache && !opts.refresh) {
      const hit = deps.cache.get<CachedResponse>(key);
      if (hit) {
        stats.cacheHits++;
        return hit;
      }
    }
    const res = await requestWithRetry(
      { url, headers },
      {
        ...cfg,
        schedule: (fn) => http.add(fn, { signal: deps.signal }),
        signal: deps.signal,
        onAttempt: (a) => {
          stats.requests++;
          if (a.retryInMs !== undefined) stats.retries++;
        },
      },
    );
    let answer: CachedResponse;
    if (cfg.notFoundStatuses.includes(res.status)) answer = { status: res.status, body: null };
    else if (res.status >= 200 && res.status < 300) {
      try {
        answer = { status: res.status, body: JSON.parse(res.body) };
      } catch {
        throw new CompanyctlError('COMPANYCTL_ENRICH_BAD_RESPONSE', `the API answered ${res.status} with a body that is not JSON`);
      }
    } else {
      throw new CompanyctlError('COMPANYCTL_ENRICH_HTTP_ERROR', `the API answered HTTP ${res.status}`, { data: { status: res.status } });
    }
    if (deps.cache && cfg.cacheTtlSeconds > 0) deps.cache.set(key, answer, cfg.cacheTtlSeconds);
    return answer;
  };

  const processOne = async (companyId: number): Promise<void> => {
    let status: runs.EnrichItemStatus;
    let detail: ItemDetail | undefined;
    try {
      [status, detail] = await enrichOne(companyId);
    } catch (e) {
      if (deps.signal?.aborted) return; // left pending: the next run does it
      if (e instanceof HttpFailure) {
        status = 'failed';
        detail = { code: 'COMPANYCTL_ENRICH_UNAVAILABLE', message: `the API did not answer successfully: ${e.message}`, status: e.status };
      } else if (isCompanyctlError(e) && !STORE_ERRORS.has(e.code)) {
        status = 'failed';
        detail = { code: e.code, message: e.message, status: (e.data?.status as number | undefined) ?? undefined };
      } else {
        throw e;
      }
      await record(companyId, status, detail);
    }
    finish(status);
  };

  /** Ask, map, validate, write. Returns the item's outcome; an 'enriched' one is already recorded. */
  const enrichOne = async (companyId: number): Promise<[runs.EnrichItemStatus, ItemDetail | undefined]> => {
    let company = await findCompany(store.read, { kind: 'id', id: companyId });
    if (!company || company.deletedAt) return done(companyId, 'failed', { code: 'COMPANYCTL_NOT_FOUND', message: `no live company with id ${companyId}` });
    if (opts.onlyMissing && mapped.every((f) => !isEmpty(company![f]))) return done(companyId, 'skipped', { reason: 'no mapped field is empty' });
    const req = requestPathFor(cfg, company);
    if (!req) return done(companyId, 'skipped', { reason: `no ${cfg.keyOrder.filter((k) => cfg.requests[k]).join(', ')} to ask by` });
    const answer = await lookup(cfg.baseUrl + req.path);
    if (answer.body === null) return done(companyId, 'not_found', { status: answer.status });

    const { patch, invalid } = mapResponse(answer.body, cfg, parseCompanyPatch, deps.company.now());
    if (Object.keys(patch).length === 0) {
      if (invalid.length > 0) {
        return done(companyId, 'failed', { code: 'COMPANYCTL_INVALID_INPUT', message: `the answer holds no valid field: ${invalid.map((i) => `${i.field}: ${i.message}`).join('; ')}`, invalid });
      }
      return done(companyId, 'unchanged', { reason: 'the answer holds none of the mapped fields' });
    }
    // A concurrent change (an admin, an import) between read and write: decide again on the new version.
    for (let attempt = 1; ; attempt++) {
      const provenance = await runs.provenanceOf(store.read, companyId);
      const changes: Partial<CompanyInput> = {};
      const kept: string[] = [];
      for (const [field, value] of Object.entries(patch) as [EnrichField, unknown][]) {
        const current = company![field];
        if (same(current, value)) continue;
        if (isEmpty(current) || opts.overwrite || provenance.get(field) === JSON.stringify(current ?? null)) (changes as Record<string, unknown>)[field] = value;
        else kept.push(field);
      }
      const base = { kept: kept.length ? kept : undefined, invalid: invalid.length ? invalid : undefined };
      if (Object.keys(changes).length === 0) return done(companyId, 'unchanged', base);
      const fields = Object.keys(changes);
      try {
        const r = await writes.add(() =>
          updateCompany(companyDeps, { kind: 'id', id: companyId }, changes, {
            ifVersion: company!.version,
            inTransaction: async (tx, after) => {
              const written = Object.fromEntries(fields.map((f) => [f, after[f as keyof Company]]));
              await runs.recordProvenance(tx, companyId, written, runId, now());
              await record(companyId, 'enriched', { fields, ...base }, tx);
            },
          }),
        );
        if (!r.changed) return done(companyId, 'unchanged', base);
        return ['enriched', undefined];
      } catch (e) {
        if (!isCompanyctlError(e) || e.code !== 'COMPANYCTL_VERSION_CONFLICT' || attempt >= 3) throw e;
        company = await findCompany(store.read, { kind: 'id', id: companyId });
        if (!company || company.deletedAt) return done(companyId, 'failed', { code: 'COMPANYCTL_NOT_FOUND', message: `company ${companyId} was deleted meanwhile` });
      }
    }
  };

  const done = async (companyId: number, status: runs.EnrichItemStatus, detail?: ItemDetail): Promise<[runs.EnrichItemStatus, ItemDetail | undefined]> => {
    await record(companyId, status, detail);
    return [status, detail];
  };

  deps.progress?.start({ runId, total, done: alreadyDone, resumed });
  const beat = setInterval(() => {
    void writes.add(() => store.transaction((tx) => runs.heartbeat(tx, runId, owner, now(), delta()))).catch(() => undefined);
  }, deps.heartbeatMs ?? 10_000);
  beat.unref();

  try {
    let after = 0;
    while (!stop()) {
      const ids = await runs.pendingItems(store.read, runId, after, 500);
      if (ids.length === 0) break;
      for (const id of ids) {
        if (stop()) break;
        await work.onSizeLessThan(cfg.concurrency * 4);
        work.add(() => processOne(id)).catch((e) => {
          fatal ??= e;
        });
      }
      after = ids[ids.length - 1]!;
    }
    await work.onIdle();
    await writes.onIdle();
  } finally {
    clearInterval(beat);
    deps.progress?.stop();
    http.clear();
  }

  const aborted = deps.signal?.aborted === true;
  const final = await runs.itemCounts(store.read, runId);
  const state: runs.EnrichRunState = fatal !== undefined || aborted || final.pending > 0 ? 'cancelled' : final.failed > 0 ? 'completed_with_failures' : 'completed';
  const counters = delta();
  await store
    .transaction(async (tx) => {
      await runs.releaseRun(tx, runId, owner, state, now(), counters);
      if (state !== 'completed' && state !== 'completed_with_failures') return;
      // What happened, for the audit log and webhooks (`--events enrich.completed`).
      const { insertOutboxEvent } = await import('../infra/db/company-write.js');
      await insertOutboxEvent(tx, {
        type: 'enrich.completed',
        companyId: null,
        actor: deps.company.actor,
        payload: {
          runId, state, total, enriched: final.enriched, unchanged: final.unchanged, notFound: final.not_found, failed: final.failed, skipped: final.skipped,
          requests: stats.requests, cacheHits: stats.cacheHits, resumed, selection: selection.raw,
        },
        createdAt: now(),
      });
    })
    .catch((e) => {
      fatal ??= e;
    });
  if (fatal !== undefined) throw fatal;
  if (aborted) {
    throw new CompanyctlError('COMPANYCTL_CANCELLED', `enrichment cancelled: run ${runId} stopped with ${final.pending} companies left`, {
      hint: 'run the same command again to resume it',
      data: { runId },
    });
  }
  const failures = (await runs.failedItems(store.read, runId, 100)).map(({ companyId, detail }) => ({
    companyId,
    code: String(detail?.code ?? 'COMPANYCTL_ENRICH_FAILED'),
    message: String(detail?.message ?? 'failed'),
    ...(detail?.status ? { status: Number(detail.status) } : {}),
  }));
  return {
    runId,
    state,
    resumed,
    total,
    alreadyDone,
    enriched: final.enriched,
    unchanged: final.unchanged,
    notFound: final.not_found,
    failed: final.failed,
    skipped: final.skipped,
    pending: final.pending,
    requests: stats.requests,
    retries: stats.retries,
    cacheHits: stats.cacheHits,
    failures,
  };
}

// Errors that mean the store itself is in trouble: they stop the run instead of failing one company.
const STORE_ERRORS = new Set(['COMPANYCTL_STORE_UNAVAILABLE', 'COMPANYCTL_STORE_BUSY', 'COMPANYCTL_SCHEMA_OUTDATED', 'COMPANYCTL_SCHEMA_TOO_NEW', 'COMPANYCTL_INTERNAL']);

function locked(run: runs.EnrichRunRow): CompanyctlError {
  return new CompanyctlError('COMPANYCTL_ENRICH_LOCKED', `enrich run ${run.id} for this selection is running in another process (${run.lockOwner ?? 'unknown'})`, {
    hint: 'wait for it to finish; if that process is gone, run again after a minute (its lock expires), or add --restart to start afresh',
    data: { runId: run.id },
  });
}

async function collectIds(deps: CompanyDeps, list: ListOptions): Promise<number[]> {
  const ids: number[] = [];
  for await (const c of listCompanies(deps, list)) ids.push(c.id);
  return ids;
}

const isEmpty = (v: unknown) => v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0);
const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** The value at a dot path ("data.address.city", "items.0.name"), or undefined. */
export function atPath(doc: unknown, path: string): unknown {
  let v: unknown = doc;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

const NUMERIC: readonly string[] = ['employees', 'revenueAmount'];
const LISTS: readonly string[] = ['tags', 'externalIds'];

/** Mapped response values, each validated as company input on its own; invalid ones are reported, not written. */
export function mapResponse(
  body: unknown,
  cfg: Pick<EnrichConfig, 'fields'>,
  parse: (raw: unknown, today: Date) => Partial<CompanyInput>,
  today: Date,
): { patch: Partial<CompanyInput>; invalid: { field: string; message: string }[] } {
  const patch: Record<string, unknown> = {};
  const invalid: { field: string; message: string }[] = [];
  for (const [field, path] of Object.entries(cfg.fields)) {
    let v = atPath(body, path!);
    if (v === null || v === undefined || v === '') continue;
    if (!NUMERIC.includes(field) && !LISTS.includes(field) && (typeof v === 'number' || typeof v === 'boolean')) v = String(v);
    try {
      const one = parse({ [field]: v }, today);
      const value = (one as Record<string, unknown>)[field];
      if (!isEmpty(value)) patch[field] = value;
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e;
      invalid.push({ field, message: e.issues[0]?.message ?? e.message });
    }
  }
  return { patch: patch as Partial<CompanyInput>, invalid };
}

/** Where the API key comes from: the environment variable named in the config, then the OS keychain. */
export async function resolveApiKey(
  cfg: EnrichConfig,
  env: Record<string, string | undefined>,
  keychainGet: (account: string) => Promise<string | null>,
): Promise<string | undefined> {
  if (!cfg.auth) return undefined;
  const fromEnv = cfg.auth.env ? env[cfg.auth.env]?.trim() : undefined;
  if (fromEnv) return fromEnv;
  if (cfg.auth.keychain) {
    const fromKeychain = await keychainGet(apiKeyAccount(cfg));
    if (fromKeychain) return fromKeychain;
  }
  throw new CompanyctlError('COMPANYCTL_ENRICH_NO_API_KEY', `no API key for ${new URL(cfg.baseUrl).origin}`, {
    hint: [cfg.auth.env && `set ${cfg.auth.env}`, cfg.auth.keychain && 'store it with "companyctl enrich set-key --stdin"'].filter(Boolean).join(', or '),
  });
}

/** The keychain account of the API key: one per API origin. */
export function apiKeyAccount(cfg: Pick<EnrichConfig, 'baseUrl'>): string {
  return `enrich-api-key@${new URL(cfg.baseUrl).origin}`;
}

export interface EnrichRunInfo extends EnrichCounts {
  id: number;
  state: runs.EnrichRunState;
  total: number;
  requests: number;
  cacheHits: number;
  actor: string;
  selection: Record<string, unknown>;
  startedAt: string;
  finishedAt: string | null;
}

export async function listEnrichRuns(store: { read: import('../infra/db/store.js').SqlReader }, limit: number): Promise<EnrichRunInfo[]> {
  const out: EnrichRunInfo[] = [];
  for (const r of await runs.listRuns(store.read, limit)) {
    const c = await runs.itemCounts(store.read, r.id);
    out.push({
      id: r.id,
      state: r.state,
      total: r.total,
      enriched: c.enriched,
      unchanged: c.unchanged,
      notFound: c.not_found,
      failed: c.failed,
      skipped: c.skipped,
      pending: c.pending,
      requests: r.requests,
      cacheHits: r.cacheHits,
      actor: r.actor,
      selection: r.selection,
      startedAt: r.startedAt,
      finishedAt: r.finishedAt,
    });
  }
  return out;
}
