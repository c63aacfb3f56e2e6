// The event handlers: the audit-log writer, the derived counts in the store, the file cache
// (invalidate, or rebuild with --warm) and the metrics. Each is idempotent by event id.
import type { Company } from '../domain/company.js';
import type { AuditLog } from '../infra/audit-log.js';
import type { FileCache } from '../infra/cache.js';
import * as es from '../infra/db/events-store.js';
import type { ClaimedDelivery } from '../infra/db/events-store.js';
import { findCompany } from '../infra/db/company-read.js';
import type { Store } from '../infra/db/store.js';
import { appendToTrail, auditEntriesFor } from './audit.js';
import { companyCacheKeys, fillCompanyCache } from './company.js';
import type { EventHandler } from './dispatch.js';
import { recordEvent, type MetricsState } from './metrics.js';

/**
 * Audit: one append per batch (one store transaction, one file lock and fdatasync). A
 * redelivered event already in the trail is skipped.
 */
export function auditHandler(log: AuditLog, store: () => Promise<Store>, now: () => Date): EventHandler {
  return {
    name: 'audit',
    async handle(batch) {
      const redelivered = batch.filter((d) => d.attempt > 1).map((d) => d.event.id);
      await appendToTrail(await store(), log, batch.flatMap((d) => auditEntriesFor(d.event)), { now: now().toISOString(), redelivered });
    },
  };
}

type Obj = Record<string, unknown>;
const isLive = (c: unknown): c is Obj => typeof c === 'object' && c !== null && !(c as Obj).deletedAt;

/**
 * Derived counts (live companies per country, industry and status). Applied in one transaction
 * together with marking the deliveries done, so each event counts exactly once. Imports change
 * many rows under one event: those trigger a recount.
 */
export function derivedHandler(store: () => Promise<Store>, now: () => Date): EventHandler {
  return {
    name: 'derived',
    acksItself: true,
    async handle(batch) {
      const s = await store();
      await s.transaction(async (tx) => {
        const undone = new Set(await es.takeUndone(tx, 'derived', batch.map((d) => d.event.id), now().toISOString()));
        const asOf = await es.statsAsOf(tx.read);
        const todo = batch.filter((d) => undone.has(d.event.id) && d.event.id > asOf).map((d) => d.event);
        // An import that changed no company (a nightly re-run of the same file) needs no recount.
        const changedMany = (e: (typeof todo)[number]) =>
          e.type.startsWith('import.') && e.type !== 'import.chunk_failed' && (Number(e.payload.inserted ?? 1) > 0 || Number(e.payload.updated ?? 1) > 0);
        if (todo.some(changedMany)) return es.recountStats(tx);
        const deltas = new Map<string, number>();
        const add = (c: Obj, by: number) => {
          for (const d of es.STAT_DIMENSIONS) {
            const key = `${d}\t${String(c[d] ?? '')}`;
            deltas.set(key, (deltas.get(key) ?? 0) + by);
          }
        };
        for (const e of todo) {
          if (!e.type.startsWith('company.')) continue;
          const { before, after } = e.payload;
          if (isLive(before)) add(before, -1);
          if (isLive(after)) add(after, +1);
        }
        await es.applyStatDeltas(tx, deltas);
      });
    },
  };
}

export interface CacheHandlerDeps {
  store: () => Promise<Store>;
  cache?: FileCache;
  /** Re-read and re-cache a written company (cache rebuild), not just drop its entries. */
  warm: boolean;
  ttlSeconds: number;
  /** Events whose writer in this process already dropped their entries: nothing to drop again. */
  alreadyInvalidated?: (eventId: number) => boolean;
}

/**
 * Cache: drop the entries a company event touched (again: a crash between commit and the
 * writer's own invalidation would otherwise leave them), and with warm, cache the current row.
 */
export function cacheHandler(deps: CacheHandlerDeps): EventHandler {
  return {
    name: 'cache',
    async handle(batch) {
      const cache = deps.cache;
      if (!cache) return;
      const ids = new Set<number>();
      for (const d of batch) {
        const { before, after } = d.event.payload as { before?: Company | null; after?: Company | null };
        if (!d.event.type.startsWith('company.')) continue;
        if (!deps.alreadyInvalidated?.(d.event.id)) cache.delete(companyCacheKeys(before ?? undefined, after ?? undefined));
        if (d.event.companyId !== null) ids.add(d.event.companyId);
      }
      if (!deps.warm || ids.size === 0) return;
      const s = await deps.store();
      for (const id of ids) {
        const generation = cache.generation();
        const c = await findCompany(s.read, { kind: 'id', id });
        if (c && !c.deletedAt) fillCompanyCache(cache, deps.ttlSeconds, c, generation);
      }
    },
  };
}

/**
 * Metrics: import summaries and event counts into the state file (skips ids already counted).
 * The text file is rendered after the command (or drain), not per batch.
 */
export function metricsHandler(update: (mutate: (s: MetricsState) => void) => Promise<unknown>): EventHandler {
  return {
    name: 'metrics',
    async handle(batch: ClaimedDelivery[]) {
      await update((s) => {
        for (const d of batch) recordEvent(s, d.event);
      });
    },
  };
}
