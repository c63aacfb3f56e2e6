// The queue of batch jobs (`import --queue`, `enrich --queue`) and their staged input.
// Claims take one due job (queued, or running with its lease run out) with FOR UPDATE SKIP
// LOCKED on PostgreSQL, so racing workers never take the same row; on SQLite the claim's
// transaction holds the write lock, which serialises claimers. Portable SQL with `?` placeholders.
import { announceJob } from './notify.js';
import { runSql, type Row, type SqlReader, type Store, type StoreTx } from './store.js';

export const QUEUED_JOB_STATES = ['staging', 'queued', 'running', 'completed', 'completed_with_rejects', 'completed_with_failures', 'failed', 'cancelled'] as const;
export type QueuedJobState = (typeof QUEUED_JOB_STATES)[number];
export type JobKind = 'import' | 'enrich';
export const FINAL_STATES: readonly QueuedJobState[] = ['completed', 'completed_with_rejects', 'completed_with_failures', 'failed', 'cancelled'];

export interface QueuedJob {
  id: number;
  kind: JobKind;
  state: QueuedJobState;
  options: Record<string, unknown>;
  actor: string;
  role: string | null;
  inputName: string | null;
  inputBytes: number | null;
  stagedBytes: number | null;
  attempts: number;
  lockedBy: string | null;
  leaseUntil: string | null;
  runAfter: string;
  /** The import job or enrich run this job became, once known. */
  refId: number | null;
  exitCode: number | null;
  result: Record<string, unknown> | null;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  updatedAt: string;
  finishedAt: string | null;
}

const iso = (v: unknown): string | null => (v === null || v === undefined ? null : v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const json = (v: unknown): Record<string, unknown> | null => (v === null || v === undefined ? null : typeof v === 'string' ? (JSON.parse(v) as Record<string, unknown>) : (v as Record<string, unknown>));

function toJob(r: Row): QueuedJob {
  return {
    id: Number(r.id),
    kind: String(r.kind) as JobKind,
    state: String(r.state) as QueuedJobState,
    options: json(r.options) ?? {},
    actor: String(r.actor),
    role: (r.role as string | null) ?? null,
    inputName: (r.input_name as string | null) ?? null,
    inputBytes: num(r.input_bytes),
    stagedBytes: num(r.staged_bytes),
    attempts: Number(r.attempts),
    lockedBy: (r.locked_by as string | null) ?? null,
    leaseUntil: iso(r.lease_until),
    runAfter: iso(r.run_after)!,
    refId: num(r.ref_id),
    exitCode: num(r.exit_code),
    result: json(r.result),
    error: (r.error as string | null) ?? null,
    createdAt: iso(r.created_at)!,
    startedAt: iso(r.started_at),
    updatedAt: iso(r.updated_at)!,
    finishedAt: iso(r.finished_at),
  };
}

const COLUMNS = `id, kind, state, options, actor, role, input_name, input_bytes, staged_bytes, attempts, locked_by, lease_until, run_after, ref_id,
  exit_code, result, error, created_at, started_at, updated_at, finished_at`;

export interface NewQueuedJob {
  kind: JobKind;
  options: Record<string, unknown>;
  actor: string;
  role: string | null;
  inputName?: string;
  inputBytes?: number;
  now: string;
}

/** A job row in 'staging' (invisible to workers until `release`d to the queue). */
export async function createQueuedJob(tx: StoreTx, j: NewQueuedJob): Promise<number> {
  const { rows } = await runSql(
    tx,
    `insert into queued_job (kind, state, options, actor, role, input_name, input_bytes, run_after, created_at, updated_at)
     values (?, 'staging', ?, ?, ?, ?, ?, ?, ?, ?) returning id`,
    [j.kind, JSON.stringify(j.options), j.actor, j.role, j.inputName ?? null, j.inputBytes ?? null, j.now, j.now, j.now],
  );
  return Number(rows[0]!.id);
}

export async function addInputPiece(tx: StoreTx, jobId: number, seq: number, data: Buffer): Promise<void> {
  await runSql(tx, 'insert into queued_job_input (job_id, seq, data) values (?, ?, ?)', [jobId, seq, data]);
}

/** Staging done: the job joins the queue with its final options, and the workers listening are told. */
export async function enqueue(tx: StoreTx, jobId: number, stagedBytes: number | null, options: Record<string, unknown>, now: string): Promise<void> {
  await runSql(tx, `update queued_job set state = 'queued', staged_bytes = ?, options = ?, run_after = ?, updated_at = ? where id = ?`, [
    stagedBytes,
    JSON.stringify(options),
    now,
    now,
    jobId,
  ]);
  await announceJob(tx, jobId);
}

/** The staged input's pieces, in order, one query per piece (so memory holds one piece). */
export async function* readInput(read: SqlReader, jobId: number): AsyncGenerator<Buffer> {
  const seqs = await read.all<{ seq: unknown }>('select seq from queued_job_input where job_id = ? order by seq', [jobId]);
  for (const { seq } of seqs) {
    const rows = await read.all<{ data: unknown }>('select data from queued_job_input where job_id = ? and seq = ?', [jobId, Number(seq)]);
    const d = rows[0]?.data;
    if (d === undefined) throw new Error(`piece ${String(seq)} of the staged input is gone`);
    yield Buffer.isBuffer(d) ? d : Buffer.from(d as Uint8Array);
  }
}

export async function dropInput(tx: StoreTx, jobId: number): Promise<void> {
  await runSql(tx, 'delete from queued_job_input where job_id = ?', [jobId]);
}

/**
 * Claim the oldest due job for `worker` until `leaseUntil`: a queued one whose time has come,
 * or a running one whose holder's lease ran out (its worker died or lost the store).
 */
export async function claimNext(store: Store, worker: string, now: string, leaseUntil: string): Promise<QueuedJob | undefined> {
  return store.transaction(async (tx) => {
    const lock = tx.dialect === 'postgresql' ? ' for update skip locked' : '';
    const due = await tx.read.all<{ id: unknown }>(
      `select id from queued_job
       where (state = 'queued' and run_after <= ?) or (state = 'running' and lease_until < ?)
       order by id limit 1${lock}`,
      [now, now],
    );
    if (due.length === 0) return undefined;
    const { rows } = await runSql(
      tx,
      `update queued_job set state = 'running', locked_by = ?, lease_until = ?, attempts = attempts + 1, started_at = coalesce(started_at, ?), updated_at = ?
       where id = ? returning ${COLUMNS}`,
      [worker, leaseUntil, now, now, Number(due[0]!.id)],
    );
    return rows[0] ? toJob(rows[0]) : undefined;
  });
}

/** Extend the leases of the jobs `worker` holds. Returns the ids it still holds. */
export async function extendLeases(tx: StoreTx, worker: string, leaseUntil: string, now: string): Promise<number[]> {
  const { rows } = await runSql(tx, `update queued_job set lease_until = ?, updated_at = ? where locked_by = ? and state = 'running' returning id`, [leaseUntil, now, worker]);
  return rows.map((r) => Number(r.id));
}

export async function setRef(store: Store, jobId: number, worker: string, refId: number): Promise<void> {
  await store.transaction((tx) => runSql(tx, 'update queued_job set ref_id = ? where id = ? and locked_by = ?', [refId, jobId, worker]));
}

export interface JobOutcome {
  state: QueuedJobState;
  exitCode: number;
  result: Record<string, unknown> | null;
  error: string | null;
}

/** Record the end of a job this worker still holds; false if it lost the job meanwhile. */
export async function finishQueuedJob(tx: StoreTx, jobId: number, worker: string, o: JobOutcome, now: string): Promise<boolean> {
  const { changes } = await runSql(
    tx,
    `update queued_job set state = ?, exit_code = ?, result = ?, error = ?, locked_by = null, lease_until = null, updated_at = ?, finished_at = ?
     where id = ? and locked_by = ? and state = 'running'`,
    [o.state, o.exitCode, o.result === null ? null : JSON.stringify(o.result), o.error, now, now, jobId, worker],
  );
  return changes === 1;
}

/** Hand a job back to the queue (a stopping worker, or a job that must wait), due at `runAfter`. */
export async function releaseQueuedJob(tx: StoreTx, jobId: number, worker: string, runAfter: string, now: string, error: string | null = null): Promise<boolean> {
  const { changes } = await runSql(
    tx,
    // A hand-back is not a failed attempt: only claims that ended in a lost lease count towards maxAttempts.
    `update queued_job set state = 'queued', locked_by = null, lease_until = null, run_after = ?, error = ?, attempts = attempts - 1, updated_at = ? where id = ? and locked_by = ? and state = 'running'`,
    [runAfter, error, now, jobId, worker],
  );
  if (changes === 1) await announceJob(tx, jobId);
  return changes === 1;
}

export async function getQueuedJob(read: SqlReader, id: number): Promise<QueuedJob | undefined> {
  const rows = await read.all<Row>(`select ${COLUMNS} from queued_job where id = ?`, [id]);
  return rows[0] ? toJob(rows[0]) : undefined;
}

export async function listQueuedJobs(read: SqlReader, opts: { kind?: JobKind; states?: readonly QueuedJobState[]; limit: number }): Promise<QueuedJob[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (opts.kind) where.push('kind = ?'), params.push(opts.kind);
  if (opts.states?.length) where.push(`state in (${opts.states.map(() => '?').join(', ')})`), params.push(...opts.states);
  const rows = await read.all<Row>(`select ${COLUMNS} from queued_job${where.length ? ` where ${where.join(' and ')}` : ''} order by id desc limit ?`, [...params, opts.limit]);
  return rows.map(toJob);
}

/** Staging that never finished (the submitter died): remove it after `before`. */
export async function dropAbandonedStaging(tx: StoreTx, before: string): Promise<number> {
  const { rows } = await runSql(tx, `select id from queued_job where state = 'staging' and created_at < ?`, [before]);
  for (const r of rows) {
    await runSql(tx, 'delete from queued_job_input where job_id = ?', [Number(r.id)]);
    await runSql(tx, 'delete from queued_job where id = ?', [Number(r.id)]);
  }
  return rows.length;
}
