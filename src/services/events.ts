// Events as the CLI runs them: which handlers exist, what happens after a command that wrote
// (deliver what is due, count, check alerts), the metrics every command records, and the
// use cases behind `companyctl events list|retry|drain`. Takes ports, never a Context.
// This module is loaded only after a command that wrote, or by the events, audit and stats
// commands; what it needs is imported statically, so it loads as one chunk.
import { statSync } from 'node:fs';
import { AuditLog } from '../infra/audit-log.js';
import type { FileCache } from '../infra/cache.js';
import * as es from '../infra/db/events-store.js';
import type { DeliveryCounts, DeliveryFilter, DeliveryRow } from '../infra/db/events-store.js';
import type { Dialect, Store } from '../infra/db/store.js';
import * as mf from '../infra/metrics-file.js';
import { CompanyctlError } from '../errors.js';
import { closeHandlers, DEFAULT_DISPATCH, dispatchDue, drain, mergeReports, type DispatchDeps, type DispatchReport, type EventHandler } from './dispatch.js';
import * as h from './events-handlers.js';
import type { EventsSettings } from './events-settings.js';
import { webhookHandler } from './events-webhook.js';
import * as m from './metrics.js';
import type { Alert, MetricsState } from './metrics.js';

export interface EventsEnv {
  store: () => Promise<Store>;
  now: () => Date;
  stateDir: string;
  /** Settings from the config file; a function, so a broken config fails only where it is used. */
  settings: () => EventsSettings;
  cache?: FileCache;
  cacheTtlSeconds: number;
  /** The cache folder of this store, for the hit and miss counters. */
  cacheDir?: string;
  actor: string;
  promFile: () => string;
  log: (entry: { level: 'info' | 'warn' | 'error'; code: string; message: string; [k: string]: unknown }) => void;
  /** Extra handlers (tests): added to the standard ones. */
  extraHandlers?: EventHandler[];
  /** Called after handlers ran and before their outcomes are recorded (crash tests). */
  beforeAck?: () => void;
  /** True for events whose writer, in this process, already dropped their cache entries. */
  cacheInvalidated?: (eventId: number) => boolean;
  /** A worker silent for this long is gone (config "worker.leaseSeconds"); unset: never leave events to one. */
  workerLeaseMs?: (dialect: Dialect) => number;
  /** The "broker" handler (RabbitMQ), when the config file has a broker section that publishes. */
  broker?: () => Promise<EventHandler | undefined>;
}

export async function openAuditLog(env: Pick<EventsEnv, 'stateDir' | 'settings'>): Promise<AuditLog> {
  return new AuditLog(env.stateDir, env.settings().auditMaxBytes);
}

export async function handlersFor(env: EventsEnv, opts: { warm?: boolean } = {}): Promise<EventHandler[]> {
  const settings = env.settings();
  const webhook = await webhookHandler({ store: env.store, now: env.now });
  const broker = await env.broker?.();
  return [
    h.auditHandler(await openAuditLog(env), env.store, env.now),
    h.derivedHandler(env.store, env.now),
    h.cacheHandler({
      store: env.store,
      cache: env.cache,
      warm: opts.warm ?? settings.warmCache,
      ttlSeconds: env.cacheTtlSeconds,
      alreadyInvalidated: env.cacheInvalidated,
    }),
    h.metricsHandler((mutate) => persistMetrics(env, mutate, { render: false })),
    ...(webhook ? [webhook] : []),
    ...(broker ? [broker] : []),
    ...(env.extraHandlers ?? []),
  ];
}

export async function dispatchDepsFor(env: EventsEnv, opts: { warm?: boolean } = {}): Promise<DispatchDeps> {
  return { store: env.store, now: env.now, handlers: await handlersFor(env, opts), settings: env.settings().dispatch ?? DEFAULT_DISPATCH, beforeAck: env.beforeAck };
}

// ---- metrics ----

function cacheCounters(env: EventsEnv): { hits: number; misses: number } | undefined {
  if (!env.cacheDir) return undefined;
  // FileCache keeps one byte per hit or miss in these files (see infra/cache.ts).
  return { hits: fileSize(`${env.cacheDir}/hits.count`), misses: fileSize(`${env.cacheDir}/misses.count`) };
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** Change the metrics state and rewrite the Prometheus text file. */
export async function persistMetrics(env: EventsEnv, mutate: (s: MetricsState) => void, opts: { render?: boolean } = {}): Promise<MetricsState> {
  return mf.updateState(
    env.stateDir,
    m.emptyMetrics,
    (s) => {
      m.normaliseMetrics(s);
      // Commands counted since the last update (see recordCommandQuickly in cli.ts).
      const log = mf.readCommandLines(env.stateDir, s.commandLogOffset);
      for (const [command, code, secs] of log.lines) m.recordCommand(s, command, code, secs);
      s.commandLogOffset = log.offset;
      mutate(s);
      s.updatedAt = env.now().toISOString();
    },
    opts.render === false ? undefined : (s) => mf.writeAtomic(env.promFile(), mf.renderPrometheus(m.metricFamilies(s, cacheCounters(env), env.now()))),
  );
}

export async function readMetrics(env: Pick<EventsEnv, 'stateDir'>): Promise<MetricsState> {
  return m.normaliseMetrics(mf.readState(env.stateDir, m.emptyMetrics));
}

/** Fold the command log (every command appends to it) into the state and render the text file. */
export async function updateMetricsFile(env: EventsEnv): Promise<void> {
  await persistMetrics(env, () => undefined);
}

/** Count deliveries in the store, record a dispatch's outcome, and evaluate the alerts. */
export async function refreshAndCheck(env: EventsEnv, report?: DispatchReport): Promise<{ counts: DeliveryCounts; alerts: Alert[]; raised: Alert[] }> {
  const store = await env.store();
  const counts = await es.deliveryCounts(store.read);
  const now = env.now();
  let alerts: Alert[] = [];
  let raised: Alert[] = [];
  await persistMetrics(env, (s) => {
    Object.assign(s.events, { pending: counts.pending, failed: counts.failed, dead: counts.dead, countedAt: now.toISOString() });
    if (report) {
      for (const [h, r] of Object.entries(report.byHandler)) s.events.delivered[h] = (s.events.delivered[h] ?? 0) + r.delivered;
      s.events.failedAttempts += report.failed + report.dead;
      s.events.deadLettered += report.dead;
    }
    alerts = m.evaluateAlerts(s, env.settings().alerts, now);
    raised = m.updateFiring(s, alerts, now);
  });
  if (raised.length > 0) await raiseAlerts(env, raised);
  return { counts, alerts, raised };
}

/** An `alert.raised` event per newly firing alert (audit log, webhooks). */
async function raiseAlerts(env: EventsEnv, alerts: Alert[]): Promise<void> {
  const { insertOutboxEvent } = await import('../infra/db/company-write.js');
  const store = await env.store();
  await store.transaction(async (tx) => {
    for (const a of alerts) {
      await insertOutboxEvent(tx, {
        type: 'alert.raised',
        companyId: null,
        actor: env.actor,
        payload: { alert: a.name, value: a.value, threshold: a.threshold, message: a.message },
        createdAt: env.now().toISOString(),
      });
    }
  });
  for (const a of alerts) env.log({ level: 'warn', code: 'COMPANYCTL_ALERT', message: a.message, alert: a.name });
}

function logReport(env: EventsEnv, report: DispatchReport): void {
  for (const e of report.errors.slice(0, 20)) {
    env.log({ level: 'warn', code: 'COMPANYCTL_EVENT_DELIVERY_FAILED', message: `event ${e.eventId} to ${e.handler}: ${e.error}`, eventId: e.eventId, handler: e.handler });
  }
}

/**
 * After a command that wrote: deliver what is due (bounded, so one command never inherits a
 * long backlog), then count and check alerts. Never throws: the command already succeeded or
 * failed on its own; problems go to the app log and a notice.
 */
export async function afterWrite(env: EventsEnv, notice: (m: string) => void): Promise<DispatchReport | undefined> {
  try {
    const settings = env.settings();
    if (!settings.dispatchAfterCommand) return undefined;
    if (settings.leaveToWorker && (await workerAlive(env))) return undefined;
    const deps = await dispatchDepsFor(env);
    const deadline = Date.now() + 10_000;
    let report: DispatchReport;
    try {
      report = await dispatchDue(deps, { maxDeliveries: settings.afterCommandLimit, deadline });
      const { raised } = await refreshAndCheck(env, report);
      if (raised.length > 0) {
        // The alert events just raised: delivered now too, and counted.
        const more = await dispatchDue(deps, { maxDeliveries: 100, deadline });
        await refreshAndCheck(env, more);
        report = mergeReports(report, more);
      }
    } finally {
      await closeHandlers(deps.handlers);
    }
    logReport(env, report);
    if (report.dead > 0) notice(`warning: ${report.dead} event deliveries are dead; see "companyctl events list --dead"`);
    return report;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    env.log({ level: 'error', code: err?.code ?? 'COMPANYCTL_INTERNAL', message: `event dispatch: ${String(err?.message ?? e)}` });
    notice(`warning: events were not delivered (${String(err?.message ?? e).split('\n')[0]}); "companyctl events drain" will deliver them`);
    return undefined;
  }
}

/** Whether a `companyctl worker` of this store beat within its lease (it then delivers the events). */
async function workerAlive(env: EventsEnv): Promise<boolean> {
  if (!env.workerLeaseMs) return false;
  const { anyWorkerAlive } = await import('../infra/db/worker-registry.js');
  const store = await env.store();
  return anyWorkerAlive(store.read, new Date(env.now().getTime() - env.workerLeaseMs(store.dialect)).toISOString());
}

// ---- events list | retry | drain ----

export async function listEvents(env: EventsEnv, filter: DeliveryFilter): Promise<DeliveryRow[]> {
  return es.listDeliveries((await env.store()).read, filter);
}

export async function retryEvents(env: EventsEnv, target: { eventId: number } | { allDead: true }): Promise<number> {
  const store = await env.store();
  if ('eventId' in target && !(await es.eventExists(store.read, target.eventId))) {
    throw new CompanyctlError('COMPANYCTL_NOT_FOUND', `no event with id ${target.eventId}`, { hint: 'list events with "companyctl events list"' });
  }
  return es.retryDeliveries(store, target, env.now().toISOString());
}

/** `events prune`, and the retention that `events drain` (or a worker) runs when configured. */
export async function pruneEvents(env: Pick<EventsEnv, 'store' | 'now'>, olderThanMs: number): Promise<{ before: string; removed: number }> {
  const before = new Date(env.now().getTime() - olderThanMs).toISOString();
  return { before, removed: await es.pruneDoneEvents(await env.store(), before) };
}

export async function drainEvents(env: EventsEnv, opts: { waitMs?: number; warm?: boolean } = {}) {
  const deps = await dispatchDepsFor(env, { warm: opts.warm });
  try {
    let report = await drain(deps, { waitMs: opts.waitMs });
    const days = env.settings().retentionDays;
    const pruned = days ? (await pruneEvents(env, days * 86_400_000)).removed : 0;
    const { alerts, raised, counts } = await refreshAndCheck(env, report);
    let remaining = counts;
    if (raised.length > 0) {
      const more = await drain(deps);
      remaining = (await refreshAndCheck(env, more)).counts;
      report = { ...mergeReports(report, more), remaining };
    }
    logReport(env, report);
    return { ...report, remaining, alerts, pruned };
  } finally {
    await closeHandlers(deps.handlers);
  }
}
