// The outbox as a queue: fan-out of new events into one delivery row per handler, claims with a
// lease (FOR UPDATE SKIP LOCKED on PostgreSQL, so several hosts drain together), acks, retries,
// and the derived company counts. Portable SQL with `?` placeholders, run inside StoreTx.
import { announce } from './notify.js';
import type { Dialect, Row, SqlReader, Store, StoreTx } from './store.js';

export type DeliveryStatus = 'pending' | 'done' | 'failed' | 'dead';

export interface OutboxEvent {
  id: number;
  type: string;
  companyId: number | null;
  actor: string;
  role: string | null;
  command: string | null;
  payload: Record<string, unknown>;
  createdAt: string;
}

export interface ClaimedDelivery {
  event: OutboxEvent;
  handler: string;
  /** 1 on the first try; more means an earlier try failed or was cut short. */
  attempt: number;
}

export interface DeliveryRow {
  eventId: number;
  type: string;
  companyId: number | null;
  actor: string;
  createdAt: string;
  /** null while the event is not yet fanned out to its handlers. */
  handler: string | null;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
}

export interface DeliveryCounts {
  pending: number;
  failed: number;
  dead: number;
  done: number;
}

async function exec(tx: StoreTx, sql: string, params: unknown[] = []): Promise<number> {
  const r = (await tx.em.getConnection().execute(sql, params, 'run', tx.em.getTransactionContext())) as { affectedRows?: number; changes?: number; rowCount?: number };
  return Number(r?.affectedRows ?? r?.changes ?? r?.rowCount ?? 0);
}

const skipLocked = (d: Dialect) => (d === 'postgresql' ? ' for update skip locked' : '');
const marks = (n: number) => Array.from({ length: n }, () => '?').join(', ');

export function iso(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

const isoOrNull = (v: unknown) => (v === null || v === undefined ? null : iso(v));

function toEvent(r: Row): OutboxEvent {
  return {
    id: Number(r.id),
    type: String(r.type),
    companyId: r.company_id === null || r.company_id === undefined ? null : Number(r.company_id),
    actor: String(r.actor),
    role: (r.role as string | null) ?? null,
    command: (r.command as string | null) || null,
    payload: (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as Record<string, unknown>,
    createdAt: iso(r.created_at),
  };
}

/**
 * Stamp the events this transaction inserted with the command line and role that made them;
 * on PostgreSQL, also announce them (and the companies they changed) to every host's worker.
 */
export async function stampEvents(tx: StoreTx, command: string, role: string | null): Promise<void> {
  if (tx.dialect !== 'postgresql') {
    await exec(tx, 'update outbox_event set command = ?, role = ? where command is null', [command, role]);
    return;
  }
  const rows = await tx.read.all<{ company_id: unknown; type: string }>('update outbox_event set command = ?, role = ? where command is null returning company_id, type', [command, role]);
  if (rows.length === 0) return;
  const companies = [...new Set(rows.filter((r) => r.type.startsWith('company.') && r.company_id !== null).map((r) => Number(r.company_id)))];
  await announce(tx, { events: true, companies: companies.length ? companies : undefined });
}

/**
 * One transaction: turn up to `limit` deliveries' worth of new outbox events into one delivery
 * per handler, claimed at once for `leaseUntil` (first attempt), then claim other due
 * deliveries (retries, leases run out, events fanned out elsewhere) up to `limit` in all.
 */
export async function claimDeliveries(
  store: Store,
  handlers: string[],
  now: string,
  leaseUntil: string,
  limit: number,
  only?: { eventIds?: number[] },
): Promise<{ fannedOut: number; claimed: ClaimedDelivery[]; more: boolean }> {
  return store.transaction(async (tx) => {
    const claimed: ClaimedDelivery[] = [];
    let fannedOut = 0;
    // Whether a limit cut the claim short: more may be waiting.
    let more = false;
    const perEvent = Math.max(1, handlers.length);
    if (!only?.eventIds && handlers.length > 0 && limit >= perEvent) {
      const fresh = (
        await tx.read.all(
          `select id, type, company_id, actor, role, command, payload, created_at from outbox_event where status = 'pending' order by id limit ?${skipLocked(tx.dialect)}`,
          [Math.floor(limit / perEvent)],
        )
      ).map(toEvent);
      more = fresh.length === Math.floor(limit / perEvent);
      if (fresh.length > 0) {
        const rows: unknown[] = [];
        for (const e of fresh) for (const h of handlers) rows.push(e.id, h, 'pending', 1, now, leaseUntil, now);
        await exec(
          tx,
          `insert into event_delivery (event_id, handler, status, attempts, next_attempt_at, locked_until, updated_at) values ${Array.from({ length: fresh.length * handlers.length }, () => '(?, ?, ?, ?, ?, ?, ?)').join(', ')} on conflict do nothing`,
          rows,
        );
        await exec(tx, `update outbox_event set status = 'dispatched' where id in (${marks(fresh.length)})`, fresh.map((e) => e.id));
        for (const e of fresh) for (const h of handlers) claimed.push({ event: e, handler: h, attempt: 1 });
        fannedOut = fresh.length;
      }
    }
    const room = limit - claimed.length;
    if (room <= 0) return { fannedOut, claimed, more };
    const filter = only?.eventIds?.length ? ` and event_id in (${marks(only.eventIds.length)})` : '';
    const due = await tx.read.all<{ event_id: unknown; handler: string; attempts: unknown }>(
      `select event_id, handler, attempts from event_delivery
       where status in ('pending', 'failed') and next_attempt_at <= ? and (locked_until is null or locked_until <= ?)${filter}
       order by event_id, handler limit ?${skipLocked(tx.dialect)}`,
      [now, now, ...(only?.eventIds ?? []), room],
    );
    more ||= due.length === room;
    if (due.length === 0) return { fannedOut, claimed, more };
    const byHandler = new Map<string, number[]>();
    for (const d of due) byHandler.set(d.handler, [...(byHandler.get(d.handler) ?? []), Number(d.event_id)]);
    for (const [handler, ids] of byHandler) {
      await exec(tx, `update event_delivery set locked_until = ?, attempts = attempts + 1, updated_at = ? where handler = ? and event_id in (${marks(ids.length)})`, [
        leaseUntil,
        now,
        handler,
        ...ids,
      ]);
    }
    const eventIds = [...new Set(due.map((d) => Number(d.event_id)))];
    const events = new Map(
      (await tx.read.all(`select id, type, company_id, actor, role, command, payload, created_at from outbox_event where id in (${marks(eventIds.length)})`, eventIds)).map((r) => {
        const e = toEvent(r);
        return [e.id, e] as const;
      }),
    );
    for (const d of due) claimed.push({ event: events.get(Number(d.event_id))!, handler: d.handler, attempt: Number(d.attempts) + 1 });
    return { fannedOut, claimed, more };
  });
}

export interface Outcome {
  eventId: number;
  handler: string;
  /** Set when the attempt failed. */
  error?: string;
  /** For a failure: 'dead' after the last attempt, else when to try again. */
  dead?: boolean;
  nextAttemptAt?: string;
  /** Done, and already marked so by the handler: nothing to record. */
  acked?: boolean;
}

export async function recordOutcomes(store: Store, outcomes: Outcome[], now: string): Promise<void> {
  if (outcomes.length === 0) return;
  await store.transaction(async (tx) => {
    const done = new Map<string, number[]>();
    for (const o of outcomes) if (!o.error && !o.acked) done.set(o.handler, [...(done.get(o.handler) ?? []), o.eventId]);
    for (const [handler, ids] of done) {
      await exec(
        tx,
        `update event_delivery set status = 'done', locked_until = null, last_error = null, updated_at = ? where handler = ? and event_id in (${marks(ids.length)})`,
        [now, handler, ...ids],
      );
    }
    for (const o of outcomes) {
      if (!o.error) continue;
      await exec(tx, `update event_delivery set status = ?, next_attempt_at = ?, locked_until = null, last_error = ?, updated_at = ? where handler = ? and event_id = ?`, [
        o.dead ? 'dead' : 'failed',
        o.nextAttemptAt ?? now,
        o.error.slice(0, 2000),
        now,
        o.handler,
        o.eventId,
      ]);
    }
  });
}

/** Inside a handler's own transaction: which of `ids` are not yet done, now marked done. */
export async function takeUndone(tx: StoreTx, handler: string, ids: number[], now: string): Promise<number[]> {
  if (ids.length === 0) return [];
  const rows = await tx.read.all<{ event_id: unknown }>(
    `update event_delivery set status = 'done', locked_until = null, last_error = null, updated_at = ?
     where handler = ? and status <> 'done' and event_id in (${marks(ids.length)}) returning event_id`,
    [now, handler, ...ids],
  );
  return rows.map((r) => Number(r.event_id));
}

/** Deliveries by state. `done` grows forever, so it is counted only when asked (a full scan). */
export async function deliveryCounts(read: SqlReader, opts: { done?: boolean } = {}): Promise<DeliveryCounts> {
  const c: DeliveryCounts = { pending: 0, failed: 0, dead: 0, done: 0 };
  const states = opts.done ? '' : ` where status in ('pending', 'failed', 'dead')`;
  for (const r of await read.all<{ status: DeliveryStatus; n: unknown }>(`select status, count(*) as n from event_delivery${states} group by status`)) c[r.status] = Number(r.n);
  // Events not yet fanned out count once each as pending.
  c.pending += Number((await read.all<{ n: unknown }>(`select count(*) as n from outbox_event where status = 'pending'`))[0]?.n ?? 0);
  return c;
}

export interface DeliveryFilter {
  status?: DeliveryStatus;
  eventId?: number;
  limit?: number;
}

/** Deliveries newest event first; undispatched events appear with handler null, status pending. */
export async function listDeliveries(read: SqlReader, f: DeliveryFilter): Promise<DeliveryRow[]> {
  const limit = f.limit ?? 50;
  const out: DeliveryRow[] = [];
  if (!f.status || f.status === 'pending') {
    const params: unknown[] = [];
    let where = `status = 'pending'`;
    if (f.eventId !== undefined) (where += ' and id = ?'), params.push(f.eventId);
    for (const r of await read.all(`select id, type, company_id, actor, created_at from outbox_event where ${where} order by id desc limit ?`, [...params, limit])) {
      out.push({
        eventId: Number(r.id),
        type: String(r.type),
        companyId: r.company_id === null ? null : Number(r.company_id),
        actor: String(r.actor),
        createdAt: iso(r.created_at),
        handler: null,
        status: 'pending',
        attempts: 0,
        nextAttemptAt: null,
        lastError: null,
      });
    }
  }
  const params: unknown[] = [];
  const conds: string[] = [];
  if (f.status) conds.push('d.status = ?'), params.push(f.status);
  if (f.eventId !== undefined) conds.push('d.event_id = ?'), params.push(f.eventId);
  const rows = await read.all(
    `select d.event_id, d.handler, d.status, d.attempts, d.next_attempt_at, d.last_error, o.type, o.company_id, o.actor, o.created_at
     from event_delivery d join outbox_event o on o.id = d.event_id
     ${conds.length ? `where ${conds.join(' and ')}` : ''}
     order by d.event_id desc, d.handler limit ?`,
    [...params, limit],
  );
  for (const r of rows) {
    out.push({
      eventId: Number(r.event_id),
      type: String(r.type),
      companyId: r.company_id === null ? null : Number(r.company_id),
      actor: String(r.actor),
      createdAt: iso(r.created_at),
      handler: String(r.handler),
      status: r.status as DeliveryStatus,
      attempts: Number(r.attempts),
      nextAttemptAt: r.status === 'done' || r.status === 'dead' ? null : isoOrNull(r.next_attempt_at),
      lastError: (r.last_error as string | null) ?? null,
    });
  }
  out.sort((a, b) => b.eventId - a.eventId || String(a.handler).localeCompare(String(b.handler)));
  return out.slice(0, limit);
}

export async function eventExists(read: SqlReader, id: number): Promise<boolean> {
  return (await read.all('select id from outbox_event where id = ?', [id])).length > 0;
}

/** Dead (and waiting) deliveries back to pending, due now, with a fresh attempt count. */
export async function retryDeliveries(store: Store, target: { eventId: number } | { allDead: true }, now: string): Promise<number> {
  return store.transaction(async (tx) =>
    'eventId' in target
      ? exec(
          tx,
          `update event_delivery set status = 'pending', attempts = 0, next_attempt_at = ?, locked_until = null, updated_at = ? where event_id = ? and status in ('dead', 'failed')`,
          [now, now, target.eventId],
        )
      : exec(tx, `update event_delivery set status = 'pending', attempts = 0, next_attempt_at = ?, locked_until = null, updated_at = ? where status = 'dead'`, [now, now]),
  );
}

// ---- derived counts (company_stat) ----

export type StatDimension = 'country' | 'industry' | 'status';
export const STAT_DIMENSIONS: StatDimension[] = ['country', 'industry', 'status'];

export async function statsAsOf(read: SqlReader): Promise<number> {
  const r = await read.all<{ value: string }>(`select value from store_meta where key = 'company_stat_as_of_event'`);
  return Number(r[0]?.value ?? 0);
}

export async function applyStatDeltas(tx: StoreTx, deltas: Map<string, number>): Promise<void> {
  // One statement, rows in one order for every writer, so two hosts never deadlock.
  const rows = [...deltas].filter(([, d]) => d !== 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (rows.length === 0) return;
  await exec(
    tx,
    `insert into company_stat (dimension, value, count) values ${rows.map(() => '(?, ?, ?)').join(', ')}
     on conflict (dimension, value) do update set count = company_stat.count + excluded.count`,
    rows.flatMap(([key, delta]) => [...(key.split('\t') as [string, string]), delta]),
  );
}

/** Count from scratch (after imports, which change many rows with one event). */
export async function recountStats(tx: StoreTx): Promise<void> {
  await exec(tx, 'delete from company_stat');
  for (const d of STAT_DIMENSIONS) {
    await exec(tx, `insert into company_stat (dimension, value, count) select '${d}', coalesce(${d}, ''), count(*) from company where deleted_at is null group by coalesce(${d}, '')`);
  }
  const max = Number((await tx.read.all<{ n: unknown }>('select coalesce(max(id), 0) as n from outbox_event'))[0]?.n ?? 0);
  await exec(tx, `insert into store_meta (key, value) values ('company_stat_as_of_event', ?) on conflict (key) do update set value = excluded.value`, [String(max)]);
}

export async function readStats(read: SqlReader): Promise<Record<StatDimension, { value: string; count: number }[]>> {
  const out: Record<StatDimension, { value: string; count: number }[]> = { country: [], industry: [], status: [] };
  for (const r of await read.all<{ dimension: StatDimension; value: string; count: unknown }>(
    'select dimension, value, count from company_stat where count > 0 order by dimension, count desc, value',
  )) {
    out[r.dimension]?.push({ value: String(r.value).trim(), count: Number(r.count) });
  }
  return out;
}

// ---- the worker's cheap checks (reads only: no write lock while idle) ----

/** Whether any event waits to be fanned out or any delivery is due at `now`. */
export async function anythingDue(read: SqlReader, now: string): Promise<boolean> {
  if ((await read.all(`select id from outbox_event where status = 'pending' limit 1`)).length > 0) return true;
  const due = await read.all(
    `select event_id from event_delivery where status in ('pending', 'failed') and next_attempt_at <= ? and (locked_until is null or locked_until <= ?) limit 1`,
    [now, now],
  );
  return due.length > 0;
}

/** When the oldest event not yet delivered to every handler was made, or null when none waits. */
export async function oldestPendingAt(read: SqlReader): Promise<string | null> {
  const a = await read.all<{ t: unknown }>(`select min(created_at) as t from outbox_event where status = 'pending'`);
  const b = await read.all<{ t: unknown }>(
    `select min(o.created_at) as t from outbox_event o where o.id = (select min(event_id) from event_delivery where status in ('pending', 'failed'))`,
  );
  const ts = [a[0]?.t, b[0]?.t].filter((t) => t !== null && t !== undefined).map((t) => iso(t));
  if (ts.length === 0) return null;
  return ts.map((t) => new Date(t).toISOString()).sort()[0]!;
}

// ---- retention ----

/**
 * Delete events created before `before` whose every delivery is done, with their delivery rows
 * (in batches, oldest first). Pending, failed and dead events stay for `events list` and retry;
 * the audit trail keeps its own entries. Returns the number of events removed.
 */
export async function pruneDoneEvents(store: Store, before: string, batch = 5000): Promise<number> {
  let removed = 0;
  for (;;) {
    const n = await store.transaction(async (tx) => {
      const ids = (
        await tx.read.all<{ id: unknown }>(
          `select o.id from outbox_event o where o.created_at < ? and o.status = 'dispatched'
           and not exists (select 1 from event_delivery d where d.event_id = o.id and d.status <> 'done')
           order by o.id limit ?`,
          [before, batch],
        )
      ).map((r) => Number(r.id));
      if (ids.length === 0) return 0;
      await exec(tx, `delete from event_delivery where event_id in (${marks(ids.length)})`, ids);
      await exec(tx, `delete from webhook_delivery where event_id in (${marks(ids.length)})`, ids);
      await exec(tx, `delete from outbox_event where id in (${marks(ids.length)})`, ids);
      return ids.length;
    });
    removed += n;
    if (n < batch) return removed;
  }
}
