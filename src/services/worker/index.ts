// `companyctl worker`: the long-running side. One process registers itself, beats, and runs two
// loops until told to stop: event delivery (woken by LISTEN/NOTIFY on PostgreSQL, polling on
// SQLite) and queued jobs (claimed one at a time). On PostgreSQL it also keeps this host's file
// cache in step with every other host's writes. Takes ports; never prints (log lines go to `log`).
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { FileCache } from '../../infra/cache.js';
import { anythingDue, oldestPendingAt } from '../../infra/db/events-store.js';
import * as q from '../../infra/db/job-queue.js';
import { listen, type Listener } from '../../infra/db/listen.js';
import { CHANGES_CHANNEL, JOBS_CHANNEL, decodeChange } from '../../infra/db/notify.js';
import type { Store, StoreLocation } from '../../infra/db/store.js';
import * as reg from '../../infra/db/worker-registry.js';
import { removeHeartbeat, writeHeartbeat } from '../../infra/worker-heartbeat.js';
import { backoffMs, dispatchDue, mergeReports, type DispatchDeps, type DispatchReport } from '../dispatch.js';
import { dispatchDepsFor, persistMetrics, pruneEvents, refreshAndCheck, type EventsEnv } from '../events.js';
import { applyChange, dropAllCompanies } from './cache-sync.js';
import { isConnectionTrouble, runJobs, type JobRunner } from './jobs.js';
import type { WorkerSettings } from './settings.js';
import { Wake } from './wake.js';

export interface WorkerLogEntry {
  level: 'info' | 'warn' | 'error';
  msg: string;
  [k: string]: unknown;
}

export interface WorkerDeps {
  store: () => Promise<Store>;
  /** Drop the store's connections; the next store() opens new ones (after a lost connection). */
  resetStore: () => Promise<void>;
  location: StoreLocation;
  settings: WorkerSettings;
  events: EventsEnv;
  cache?: FileCache;
  /** Lifetime of the cache entries the worker writes. */
  cacheTtlSeconds: number;
  stateDir: string;
  now: () => Date;
  log: (entry: WorkerLogEntry) => void;
  runners: Partial<Record<q.JobKind, JobRunner>>;
  version: string;
  /** What this worker does (default both). */
  deliver?: boolean;
  jobs?: boolean;
}

export interface WorkerReport {
  workerId: string;
  delivered: number;
  jobsRun: number;
  /** Whether it stopped before its in-flight work ended (the stop deadline passed). */
  abandoned: boolean;
}

/** How often the heartbeat file is rewritten (`company get` calls a worker silent for 10 s gone). */
const FILE_BEAT_MS = 2_000;
/** How often the metrics (lag, counters) are written at most. */
const METRICS_EVERY_MS = 1_000;
/** Retention (`events.retentionDays`) runs at most this often. */
const PRUNE_EVERY_MS = 3_600_000;
/** Stopped workers' rows are kept this long for `worker status`. */
const KEEP_STOPPED_MS = 24 * 3_600_000;
/** Staging a submitter never finished is removed after this long. */
const STAGING_ABANDONED_MS = 3_600_000;
/** Reconnect backoff: 250 ms doubling to 10 s, jittered. */
const RECONNECT = { backoffBaseMs: 250, backoffMaxMs: 10_000 };

export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

/**
 * Run until `stop` aborts; then finish the delivery or job chunk in flight, hand back what it
 * holds, and return. `deadline` (aborted later by the caller) abandons in-flight work.
 */
export async function runWorker(deps: WorkerDeps, stop: AbortSignal, deadline?: AbortSignal): Promise<WorkerReport> {
  const w = new Worker(deps, stop, deadline);
  return w.run();
}

class Worker {
  readonly id = newWorkerId();
  private readonly eventsWake = new Wake();
  private readonly jobsWake = new Wake();
  private listener: Listener | undefined;
  /** Since when this worker has heard every change (epoch ms); null while not listening. */
  private listeningSince: number | null = null;
  private registered = false;
  private recovering: Promise<void> | undefined;
  private reconnectAttempt = 0;
  private timers: NodeJS.Timeout[] = [];
  private beating = false;
  private lastBeatOk = Date.now();
  private delivered = 0;
  private unreported = { delivered: 0, jobs: 0 };
  private pendingReport: DispatchReport | undefined;
  private lastMetricsAt = 0;
  private lastPruneAt = 0;
  private cacheCounts = { drops: 0, refills: 0 };
  private jobCounts: Record<string, number> = {};
  jobsRun = 0;
  /** Jobs this worker holds now; the heartbeat extends their leases. */
  readonly held = new Set<number>();
  /** Lost the job to another worker (its lease ran out): the job loop aborts it. */
  onLost: ((jobId: number) => void) | undefined;

  constructor(
    readonly deps: WorkerDeps,
    readonly stop: AbortSignal,
    readonly deadline?: AbortSignal,
  ) {}

  get stopping(): boolean {
    return this.stop.aborted;
  }

  async run(): Promise<WorkerReport> {
    const d = this.deps;
    const onStop = () => {
      this.eventsWake.kick();
      this.jobsWake.kick();
      d.log({ level: 'info', msg: 'stopping: finishing the work in flight', worker: this.id });
    };
    this.stop.addEventListener('abort', onStop, { once: true });
    await this.register();
    if (this.stopping) return this.finish(false);
    d.log({ level: 'info', msg: 'started', worker: this.id, store: d.location.display, dialect: d.location.dialect, ...d.settings });
    if (d.location.dialect === 'postgresql') this.startListening();
    this.timers.push(setInterval(() => this.writeBeatFile(), FILE_BEAT_MS));
    this.timers.push(setInterval(() => void this.beat(), d.settings.heartbeatMs));
    this.writeBeatFile();
    const loops: Promise<void>[] = [];
    if (d.deliver !== false) loops.push(this.deliveryLoop());
    if (d.jobs !== false) loops.push(runJobs(this, this.jobsWake));
    const done = Promise.all(loops);
    let abandoned = false;
    if (this.deadline) {
      const dl = this.deadline;
      abandoned = await Promise.race([done.then(() => false), new Promise<boolean>((r) => (dl.aborted ? r(true) : dl.addEventListener('abort', () => r(true), { once: true })))]);
    } else {
      await done;
    }
    return this.finish(abandoned);
  }

  private async finish(abandoned: boolean): Promise<WorkerReport> {
    const d = this.deps;
    for (const t of this.timers) clearInterval(t);
    await this.listener?.close();
    this.listener = undefined;
    removeHeartbeat(d.stateDir, d.location.key, this.id);
    if (!abandoned) {
      await this.flushMetrics(true).catch((e) => this.logError('metrics', e));
      if (this.registered) {
        const store = await d.store().catch(() => undefined);
        await store?.transaction((tx) => reg.setWorkerState(tx, this.id, 'stopped', d.now().toISOString())).catch((e) => this.logError('unregister', e));
      }
    }
    d.log({ level: abandoned ? 'warn' : 'info', msg: abandoned ? 'stopped before the work in flight ended; another worker takes it over after the lease' : 'stopped', worker: this.id, delivered: this.delivered, jobsRun: this.jobsRun });
    return { workerId: this.id, delivered: this.delivered, jobsRun: this.jobsRun, abandoned };
  }

  // ---------------------------------------------------------------- registry and heartbeat

  private async register(): Promise<void> {
    const d = this.deps;
    while (!this.stopping) {
      try {
        const store = await d.store();
        const now = d.now();
        await store.transaction(async (tx) => {
          await reg.registerWorker(tx, { id: this.id, host: hostname(), pid: process.pid, version: d.version, now: now.toISOString() });
          await reg.pruneWorkers(tx, new Date(now.getTime() - KEEP_STOPPED_MS).toISOString());
          await q.dropAbandonedStaging(tx, new Date(now.getTime() - STAGING_ABANDONED_MS).toISOString());
        });
        this.registered = true;
        this.lastBeatOk = Date.now();
        return;
      } catch (e) {
        await this.trouble('register', e);
      }
    }
  }

  /** The store row and the held jobs' leases; a beat that fails starts a reconnect. */
  private async beat(): Promise<void> {
    if (this.beating || this.recovering || this.stopping) return;
    this.beating = true;
    const d = this.deps;
    try {
      const store = await d.store();
      const now = d.now();
      const lease = new Date(now.getTime() + d.settings.leaseMs).toISOString();
      const add = this.unreported;
      this.unreported = { delivered: 0, jobs: 0 };
      const { alive, still } = await store.transaction(async (tx) => ({
        alive: await reg.beat(tx, this.id, now.toISOString(), { events: add.delivered, jobs: add.jobs }),
        still: this.held.size > 0 ? await q.extendLeases(tx, this.id, lease, now.toISOString()) : [],
      }));
      this.lastBeatOk = Date.now();
      if (!alive) {
        // Pruned as gone after a long silence: join again.
        await store.transaction((tx) => reg.registerWorker(tx, { id: this.id, host: hostname(), pid: process.pid, version: d.version, now: now.toISOString() }));
      }
      for (const id of this.held) if (!still.includes(id)) this.onLost?.(id);
    } catch (e) {
      void this.trouble('heartbeat', e);
    } finally {
      this.beating = false;
    }
  }

  /** This host's heartbeat file: what `company get` reads to decide how long to trust the cache. */
  private writeBeatFile(): void {
    const d = this.deps;
    // Silent towards the store for longer than a lease: not vouching for anything.
    const healthy = Date.now() - this.lastBeatOk < d.settings.leaseMs;
    try {
      writeHeartbeat(d.stateDir, d.location.key, {
        workerId: this.id,
        host: hostname(),
        pid: process.pid,
        beatAt: Date.now(),
        listeningSince: healthy ? this.listeningSince : null,
      });
    } catch (e) {
      this.logError('heartbeat file', e);
    }
  }

  // ---------------------------------------------------------------- notifications

  private startListening(): void {
    const d = this.deps;
    this.listener = listen(
      d.location,
      [CHANGES_CHANNEL, JOBS_CHANNEL],
      {
        notify: (channel, payload) => (channel === JOBS_CHANNEL ? this.jobsWake.kick() : this.onChange(payload)),
        connected: (at) => {
          // Changes sent while we were not listening are lost: entries cached before now are not vouched for.
          this.listeningSince = at;
          this.writeBeatFile();
          d.log({ level: 'info', msg: 'listening for changes', worker: this.id });
          this.eventsWake.kick();
          this.jobsWake.kick();
        },
        lost: (e) => {
          this.listeningSince = null;
          this.writeBeatFile();
          this.logError('notification connection lost; reconnecting', e);
        },
      },
      (attempt) => backoffMs(attempt, RECONNECT),
    );
  }

  private syncing: Promise<void> = Promise.resolve();

  private onChange(payload: string | undefined): void {
    const change = decodeChange(payload);
    if (change.events) this.eventsWake.kick();
    const cache = this.deps.cache;
    if (!cache || !change.companies) return;
    // One at a time, in the order heard, so an older version never overwrites a newer one.
    this.syncing = this.syncing.then(async () => {
      try {
        const store = await this.deps.store();
        const r = await applyChange(cache, store.read, this.deps.cacheTtlSeconds, change);
        this.cacheCounts.drops += r.dropped;
        this.cacheCounts.refills += r.refilled;
      } catch (e) {
        // Could not read the new versions: drop everything rather than vouch for old ones.
        this.cacheCounts.drops += dropAllCompanies(cache);
        this.logError('cache sync', e);
      }
    });
  }

  // ---------------------------------------------------------------- event delivery

  private async deliveryLoop(): Promise<void> {
    const d = this.deps;
    let deps: DispatchDeps | undefined;
    // Woken by a notification (or just busy): claim at once; on a timed poll, look first with a cheap read.
    let woken = true;
    while (!this.stopping) {
      try {
        deps ??= await dispatchDepsFor(d.events);
        const store = await d.store();
        if (woken || (await anythingDue(store.read, d.now().toISOString()))) {
          const report = await dispatchDue(deps, { maxDeliveries: deps.settings.batchSize });
          this.record(report);
          if (report.delivered + report.failed + report.dead + report.fannedOut > 0) continue;
        }
        await this.flushMetrics(false);
        await this.pruneIfDue();
      } catch (e) {
        deps = undefined;
        await this.trouble('event delivery', e);
        continue;
      }
      woken = await this.eventsWake.sleep(d.settings.pollMs);
    }
  }

  /** Delivered events older than `events.retentionDays`, removed when idle, at most hourly. */
  private async pruneIfDue(): Promise<void> {
    const days = this.deps.events.settings().retentionDays;
    if (!days || Date.now() - this.lastPruneAt < PRUNE_EVERY_MS) return;
    this.lastPruneAt = Date.now();
    const { removed, before } = await pruneEvents(this.deps.events, days * 86_400_000);
    if (removed > 0) this.deps.log({ level: 'info', msg: 'pruned delivered events', worker: this.id, removed, before });
  }

  private record(r: DispatchReport): void {
    if (r.delivered + r.failed + r.dead === 0) return;
    this.delivered += r.delivered;
    this.unreported.delivered += r.delivered;
    this.pendingReport = this.pendingReport ? mergeReports(this.pendingReport, r) : r;
    this.deps.log({
      level: r.failed + r.dead > 0 ? 'warn' : 'info',
      msg: 'delivered',
      worker: this.id,
      delivered: r.delivered,
      failed: r.failed,
      dead: r.dead,
      byHandler: r.byHandler,
      ...(r.errors.length ? { lastError: r.errors.at(-1) } : {}),
    });
  }

  /** Counters, the oldest pending event's age and the alerts, at most once a second. */
  async flushMetrics(force: boolean): Promise<void> {
    if (!force && Date.now() - this.lastMetricsAt < METRICS_EVERY_MS) return;
    this.lastMetricsAt = Date.now();
    const d = this.deps;
    const report = this.pendingReport;
    this.pendingReport = undefined;
    const store = await d.store();
    const oldest = await oldestPendingAt(store.read);
    const now = d.now();
    const drops = this.cacheCounts;
    this.cacheCounts = { drops: 0, refills: 0 };
    const jobs = this.jobCounts;
    this.jobCounts = {};
    await persistMetrics(
      d.events,
      (s) => {
        s.worker.cacheDrops += drops.drops;
        s.worker.cacheRefills += drops.refills;
        for (const [k, n] of Object.entries(jobs)) s.worker.jobs[k] = (s.worker.jobs[k] ?? 0) + n;
        s.worker.oldestPendingSeconds = oldest ? Math.max(0, Math.round((now.getTime() - Date.parse(oldest)) / 10) / 100) : 0;
        s.worker.heartbeatAt = now.toISOString();
      },
      { render: false },
    );
    // Renders the text file, counts deliveries by state and raises alerts (as events, delivered next round).
    const { raised } = await refreshAndCheck(d.events, report);
    if (raised.length) this.eventsWake.kick();
  }

  countJob(kind: string, state: string): void {
    this.jobsRun++;
    this.unreported.jobs++;
    this.jobCounts[`${kind}|${state}`] = (this.jobCounts[`${kind}|${state}`] ?? 0) + 1;
  }

  // ---------------------------------------------------------------- trouble

  /**
   * A failure in a loop. A lost store connection is reopened (once for all loops) after a
   * jittered, growing pause; anything else is logged and the loop pauses before trying again.
   */
  async trouble(where: string, e: unknown): Promise<void> {
    this.logError(where, e);
    if (!isConnectionTrouble(e)) {
      await sleep(Math.min(this.deps.settings.pollMs * 5, 5_000), this.stop);
      return;
    }
    this.recovering ??= (async () => {
      const delay = backoffMs(++this.reconnectAttempt, RECONNECT);
      await this.deps.resetStore().catch(() => undefined);
      await sleep(delay, this.stop);
      try {
        await (await this.deps.store()).read.all('select 1');
        this.deps.log({ level: 'info', msg: 'store reachable again', worker: this.id });
        this.reconnectAttempt = 0;
      } catch (err) {
        this.logError('reconnect', err);
      }
    })().finally(() => (this.recovering = undefined));
    await this.recovering;
  }

  logError(where: string, e: unknown): void {
    const err = e as { code?: string; message?: string };
    this.deps.log({ level: 'error', msg: `${where}: ${String(err?.message ?? e).split('\n')[0]}`, code: err?.code ?? 'COMPANYCTL_INTERNAL', worker: this.id });
  }
}

export type { Worker };

/** Sleep `ms`, or less if `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
