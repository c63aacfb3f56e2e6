// The dispatcher: after a write commits, new outbox events fan out into one delivery per
// handler; due deliveries are claimed (with a lease) and handed to their handlers through a
// p-queue of bounded concurrency; each outcome is recorded: done, or failed with an
// exponential, jittered backoff, or dead after the last attempt. Handlers are idempotent by
// event id, so a claim cut short by a crash is simply delivered again after its lease.
import { claimDeliveries, deliveryCounts, recordOutcomes, type ClaimedDelivery, type DeliveryCounts, type Outcome } from '../infra/db/events-store.js';
import type { Store } from '../infra/db/store.js';
import { backoffDelay } from '../infra/http.js';

export interface HandlerResult {
  /** Event ids whose delivery failed, with the reason; the rest of the batch is done. */
  failed?: Map<number, string>;
}

export interface EventHandler {
  name: string;
  /** One batch of this handler's deliveries (oldest event first). Throwing fails them all. */
  handle(batch: ClaimedDelivery[]): Promise<HandlerResult | void>;
  /** The handler marks its deliveries done itself, in the transaction of its effect. */
  acksItself?: boolean;
  /** Let go of what it holds open (the broker's connection); called when the handlers are done. */
  close?(): Promise<void>;
}

/** Close every handler that holds something open; never throws. */
export async function closeHandlers(handlers: EventHandler[]): Promise<void> {
  for (const h of handlers) await h.close?.().catch(() => undefined);
}

export interface DispatchSettings {
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  leaseMs: number;
  concurrency: number;
  batchSize: number;
}

export const DEFAULT_DISPATCH: DispatchSettings = {
  maxAttempts: 8,
  backoffBaseMs: 2_000,
  backoffMaxMs: 60 * 60_000,
  leaseMs: 60_000,
  concurrency: 4,
  batchSize: 1000,
};

export interface DispatchDeps {
  store: () => Promise<Store>;
  now: () => Date;
  handlers: EventHandler[];
  settings: DispatchSettings;
  random?: () => number;
  /** Called after a batch's handlers ran, before their outcomes are recorded (crash tests). */
  beforeAck?: () => void;
}

export interface DispatchReport {
  fannedOut: number;
  delivered: number;
  failed: number;
  dead: number;
  byHandler: Record<string, { delivered: number; failed: number; dead: number }>;
  errors: { eventId: number; handler: string; error: string }[];
}

const emptyReport = (): DispatchReport => ({ fannedOut: 0, delivered: 0, failed: 0, dead: 0, byHandler: {}, errors: [] });

/** The project's one backoff (infra/http.ts backoffDelay: exponential, "equal jitter", capped) in the dispatcher's units. */
export function backoffMs(attempt: number, s: Pick<DispatchSettings, 'backoffBaseMs' | 'backoffMaxMs'>, random = Math.random): number {
  return backoffDelay(Math.max(1, attempt), { backoffMs: s.backoffBaseMs, maxBackoffMs: s.backoffMaxMs }, random);
}

/**
 * Deliver what is due now: fan out new events, then claim and deliver in batches until nothing
 * is due, `maxDeliveries` were handled, or `deadline` (epoch ms) passed.
 */
export async function dispatchDue(deps: DispatchDeps, opts: { maxDeliveries?: number; deadline?: number; eventIds?: number[] } = {}): Promise<DispatchReport> {
  const store = await deps.store();
  const s = deps.settings;
  const report = emptyReport();
  const names = deps.handlers.map((h) => h.name);
  const byName = new Map(deps.handlers.map((h) => [h.name, h]));
  const max = opts.maxDeliveries ?? Infinity;
  let handled = 0;
  let queue: import('p-queue').default | undefined;
  for (;;) {
    if (handled >= max || (opts.deadline !== undefined && Date.now() > opts.deadline)) break;
    const now = deps.now();
    const limit = Math.min(s.batchSize, max - handled);
    const { fannedOut, claimed: batch, more } = await claimDeliveries(store, names, now.toISOString(), new Date(now.getTime() + s.leaseMs).toISOString(), limit, {
      eventIds: opts.eventIds,
    });
    report.fannedOut += fannedOut;
    if (batch.length === 0) break;
    handled += batch.length;
    const groups = new Map<string, ClaimedDelivery[]>();
    for (const d of batch) groups.set(d.handler, [...(groups.get(d.handler) ?? []), d]);
    const outcomes: Outcome[] = [];
    const deliver = async ([name, group]: [string, ClaimedDelivery[]]) => {
      const handler = byName.get(name);
      let failed: Map<number, string> | undefined;
      try {
        if (!handler) throw new Error(`no handler "${name}" in this companyctl (configured elsewhere?)`);
        failed = (await handler.handle(group))?.failed;
      } catch (e) {
        const msg = errorText(e);
        failed = new Map(group.map((d) => [d.event.id, msg]));
      }
      for (const d of group) {
        const error = failed?.get(d.event.id);
        outcomes.push({ ...outcome(d, error, deps), ...(error === undefined && handler?.acksItself ? { acked: true } : {}) });
      }
    };
    if (groups.size <= s.concurrency) {
      // Within the bound already: p-queue (10 ms to load, on every write command) adds nothing.
      await Promise.all([...groups].map(deliver));
    } else {
      queue ??= new (await import('p-queue')).default({ concurrency: s.concurrency });
      const q = queue;
      await Promise.all([...groups].map((g) => q.add(() => deliver(g))));
    }
    deps.beforeAck?.();
    await recordOutcomes(store, outcomes, deps.now().toISOString());
    for (const o of outcomes) {
      const h = (report.byHandler[o.handler] ??= { delivered: 0, failed: 0, dead: 0 });
      if (!o.error) (report.delivered++, h.delivered++);
      else {
        if (o.dead) (report.dead++, h.dead++);
        else (report.failed++, h.failed++);
        report.errors.push({ eventId: o.eventId, handler: o.handler, error: o.error });
      }
    }
    // A partial batch took everything that was due: what commits meanwhile is the next run's.
    if (!more) break;
  }
  return report;
}

function outcome(d: ClaimedDelivery, error: string | undefined, deps: DispatchDeps): Outcome {
  if (error === undefined) return { eventId: d.event.id, handler: d.handler };
  const s = deps.settings;
  if (d.attempt >= s.maxAttempts) return { eventId: d.event.id, handler: d.handler, error, dead: true };
  const wait = backoffMs(d.attempt, s, deps.random);
  return { eventId: d.event.id, handler: d.handler, error, nextAttemptAt: new Date(deps.now().getTime() + wait).toISOString() };
}

function errorText(e: unknown): string {
  const err = e as { code?: string; message?: string };
  const msg = String(err?.message ?? e).split('\n')[0]!;
  return err?.code && !msg.includes(err.code) ? `${err.code}: ${msg}` : msg;
}

export function mergeReports(a: DispatchReport, b: DispatchReport): DispatchReport {
  const byHandler = { ...a.byHandler };
  for (const [k, v] of Object.entries(b.byHandler)) {
    const h = (byHandler[k] ??= { delivered: 0, failed: 0, dead: 0 });
    byHandler[k] = { delivered: h.delivered + v.delivered, failed: h.failed + v.failed, dead: h.dead + v.dead };
  }
  return {
    fannedOut: a.fannedOut + b.fannedOut,
    delivered: a.delivered + b.delivered,
    failed: a.failed + b.failed,
    dead: a.dead + b.dead,
    byHandler,
    errors: [...a.errors, ...b.errors].slice(-100),
  };
}

/**
 * `events drain`: deliver everything due; with `waitMs`, also wait for retries scheduled
 * within that time, until every delivery is done or dead.
 */
export async function drain(deps: DispatchDeps, opts: { waitMs?: number } = {}): Promise<DispatchReport & { remaining: DeliveryCounts }> {
  const store = await deps.store();
  const until = Date.now() + (opts.waitMs ?? 0);
  let report = emptyReport();
  for (;;) {
    report = mergeReports(report, await dispatchDue(deps));
    if (Date.now() >= until) break;
    const next = await store.read.all<{ t: unknown }>(`select min(next_attempt_at) as t from event_delivery where status in ('pending', 'failed')`);
    const t = next[0]?.t;
    if (t === null || t === undefined) break;
    const at = new Date(t instanceof Date ? t : String(t)).getTime();
    if (at > until) break;
    await new Promise((r) => setTimeout(r, Math.max(5, Math.min(at - Date.now(), until - Date.now()))));
  }
  return { ...report, remaining: await deliveryCounts(store.read) };
}

/**
 * For long-running work (many writes in one process): `kick()` after each commit schedules a
 * dispatch run `delayMs` later (or one more after the one running), so each run delivers a
 * batch of whatever committed meanwhile: one audit append and fdatasync, one count update,
 * one metrics write per batch instead of per event.
 */
export class Dispatcher {
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending = false;
  private lastStart = 0;
  report: DispatchReport = emptyReport();
  error: unknown;
  /** Dispatch runs made (each takes whatever committed since the one before). */
  runs = 0;

  constructor(
    private readonly deps: DispatchDeps,
    private readonly delayMs = 250,
  ) {}

  kick(): void {
    this.pending = true;
    // Busy writers may never let a timer fire (their awaits are all microtasks): start
    // directly once the delay has passed since the last run began; the timer covers a lull.
    if (!this.running && Date.now() - this.lastStart >= this.delayMs) return this.start();
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      if (this.pending) this.kick();
    }, this.delayMs);
  }

  private start(): void {
    this.pending = false;
    this.lastStart = Date.now();
    this.runs++;
    this.running = (async () => {
      try {
        this.report = mergeReports(this.report, await dispatchDue(this.deps));
      } catch (e) {
        this.error ??= e;
      }
      this.running = undefined;
    })();
  }

  /** Deliver what is waiting now, and return once no run is left. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.running) await this.running;
      else if (this.pending) this.start();
      else break;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
