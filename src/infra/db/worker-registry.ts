// The registry of workers: one row per `companyctl worker` process, its heartbeat, and what it
// counts. A worker is alive while its heartbeat is younger than the lease; `worker status`
// and a taking-over worker both read it. Portable SQL with `?` placeholders.
import { runSql, type Row, type SqlReader, type StoreTx } from './store.js';

export interface WorkerRow {
  id: string;
  host: string;
  pid: number;
  version: string;
  state: 'running' | 'stopping' | 'stopped';
  startedAt: string;
  heartbeatAt: string;
  stoppedAt: string | null;
  jobsRun: number;
  eventsDelivered: number;
  /** Jobs it holds now (ids). */
  holds: number[];
}

const iso = (v: unknown): string | null => (v === null || v === undefined ? null : v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());

export async function registerWorker(tx: StoreTx, w: { id: string; host: string; pid: number; version: string; now: string }): Promise<void> {
  await runSql(tx, `insert into worker (id, host, pid, version, state, started_at, heartbeat_at) values (?, ?, ?, ?, 'running', ?, ?)`, [w.id, w.host, w.pid, w.version, w.now, w.now]);
}

/** Refresh the heartbeat and add to the counters; false when the row is gone or stopped (forgotten). */
export async function beat(tx: StoreTx, id: string, now: string, add: { jobs?: number; events?: number } = {}): Promise<boolean> {
  const { changes } = await runSql(
    tx,
    `update worker set heartbeat_at = ?, jobs_run = jobs_run + ?, events_delivered = events_delivered + ? where id = ? and state <> 'stopped'`,
    [now, add.jobs ?? 0, add.events ?? 0, id],
  );
  return changes === 1;
}

export async function setWorkerState(tx: StoreTx, id: string, state: 'stopping' | 'stopped', now: string): Promise<void> {
  await runSql(tx, `update worker set state = ?, stopped_at = ?, heartbeat_at = ? where id = ?`, [state, state === 'stopped' ? now : null, now, id]);
}

/** Workers seen since `since` (and every one not stopped), newest first, with the jobs each holds. */
export async function listWorkers(read: SqlReader, since: string, limit = 100): Promise<WorkerRow[]> {
  const rows = await read.all<Row>(
    `select id, host, pid, version, state, started_at, heartbeat_at, stopped_at, jobs_run, events_delivered from worker
     where state <> 'stopped' or heartbeat_at >= ? order by started_at desc limit ?`,
    [since, limit],
  );
  const held = await read.all<{ id: unknown; locked_by: string }>(`select id, locked_by from queued_job where state = 'running' and locked_by is not null order by id`);
  const holds = new Map<string, number[]>();
  for (const h of held) holds.set(h.locked_by, [...(holds.get(h.locked_by) ?? []), Number(h.id)]);
  return rows.map((r) => ({
    id: String(r.id),
    host: String(r.host),
    pid: Number(r.pid),
    version: String(r.version),
    state: String(r.state) as WorkerRow['state'],
    startedAt: iso(r.started_at)!,
    heartbeatAt: iso(r.heartbeat_at)!,
    stoppedAt: iso(r.stopped_at),
    jobsRun: Number(r.jobs_run),
    eventsDelivered: Number(r.events_delivered),
    holds: holds.get(String(r.id)) ?? [],
  }));
}

/** Whether any worker has beaten since `since` and is not stopped. */
export async function anyWorkerAlive(read: SqlReader, since: string): Promise<boolean> {
  return (await read.all(`select id from worker where state <> 'stopped' and heartbeat_at >= ? limit 1`, [since])).length > 0;
}

/** Workers on `host` with `pid` (an import lock names host and pid): their latest row, if any. */
export async function findWorker(read: SqlReader, host: string, pid: number): Promise<{ state: string; heartbeatAt: string } | undefined> {
  const rows = await read.all<Row>(`select state, heartbeat_at from worker where host = ? and pid = ? order by started_at desc limit 1`, [host, pid]);
  return rows[0] ? { state: String(rows[0].state), heartbeatAt: iso(rows[0].heartbeat_at)! } : undefined;
}

/** Stopped workers' rows older than `before` are history: keep the table small. */
export async function pruneWorkers(tx: StoreTx, before: string): Promise<number> {
  return (await runSql(tx, `delete from worker where (state = 'stopped' and stopped_at < ?) or heartbeat_at < ?`, [before, before])).changes;
}
