// Import job rows: the job, its checkpoint (committed with each chunk), its counts and the
// run lock that keeps two cron runs off one job. Portable SQL with `?` placeholders.
import { announce } from './notify.js';
import type { Row, SqlReader, StoreTx } from './store.js';

export const JOB_STATES = ['running', 'completed', 'completed_with_rejects', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface ImportJob {
  id: number;
  source: string;
  identity: string;
  checksum: string | null;
  format: string;
  encoding: string;
  options: Record<string, unknown>;
  state: JobState;
  rowsDone: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  rejectsFile: string | null;
  rejectsBytes: number;
  error: string | null;
  lockOwner: string | null;
  heartbeatAt: string | null;
  actor: string;
  elapsedMs: number;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** Streamed input (stdin, a pipe): the length and sha256 of the bytes read by the last checkpoint. */
  inputPrefix: InputPrefix | null;
}

export interface InputPrefix {
  bytes: number;
  sha256: string;
}

const iso = (v: unknown): string | null => (v === null || v === undefined ? null : v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());

function toJob(r: Row): ImportJob {
  return {
    id: Number(r.id),
    source: String(r.source),
    identity: String(r.identity),
    checksum: r.checksum === null ? null : String(r.checksum),
    format: String(r.format),
    encoding: String(r.encoding),
    options: typeof r.options === 'string' ? (JSON.parse(r.options) as Record<string, unknown>) : (r.options as Record<string, unknown>),
    state: String(r.state) as JobState,
    rowsDone: Number(r.rows_done),
    inserted: Number(r.inserted),
    updated: Number(r.updated),
    unchanged: Number(r.unchanged),
    rejected: Number(r.rejected),
    rejectsFile: r.rejects_file === null ? null : String(r.rejects_file),
    rejectsBytes: Number(r.rejects_bytes),
    error: r.error === null ? null : String(r.error),
    lockOwner: r.lock_owner === null ? null : String(r.lock_owner),
    heartbeatAt: iso(r.heartbeat_at),
    actor: String(r.actor),
    elapsedMs: Number(r.elapsed_ms),
    startedAt: iso(r.started_at)!,
    updatedAt: iso(r.updated_at)!,
    finishedAt: iso(r.finished_at),
    inputPrefix: r.input_prefix_sha256 == null ? null : { bytes: Number(r.input_prefix_bytes), sha256: String(r.input_prefix_sha256) },
  };
}

async function exec(tx: StoreTx, sql: string, params: unknown[]): Promise<Row[]> {
  const conn = tx.em.getConnection();
  return (await conn.execute(sql, params, 'all', tx.em.getTransactionContext())) as Row[];
}

export async function getJob(read: SqlReader, id: number): Promise<ImportJob | undefined> {
  const rows = await read.all<Row>('select * from import_job where id = ?', [id]);
  return rows[0] ? toJob(rows[0]) : undefined;
}

export async function listJobs(read: SqlReader, opts: { limit: number; state?: JobState }): Promise<ImportJob[]> {
  const where = opts.state ? 'where state = ?' : '';
  const rows = await read.all<Row>(`select * from import_job ${where} order by id desc limit ?`, opts.state ? [opts.state, opts.limit] : [opts.limit]);
  return rows.map(toJob);
}

/** The newest job for this input and options, in any state. */
export async function latestJob(read: SqlReader, identity: string): Promise<ImportJob | undefined> {
  const rows = await read.all<Row>('select * from import_job where identity = ? order by id desc limit 1', [identity]);
  return rows[0] ? toJob(rows[0]) : undefined;
}

export interface NewJob {
  source: string;
  identity: string;
  checksum: string | null;
  format: string;
  encoding: string;
  options: Record<string, unknown>;
  rejectsFile: string;
  lockOwner: string;
  actor: string;
  now: string;
}

export async function createJob(tx: StoreTx, j: NewJob): Promise<number> {
  const rows = await exec(
    tx,
    `insert into import_job (source, identity, checksum, format, encoding, options, state, rejects_file, lock_owner, heartbeat_at, actor, started_at, updated_at)
     values (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?) returning id`,
    [j.source, j.identity, j.checksum, j.format, j.encoding, JSON.stringify(j.options), j.rejectsFile, j.lockOwner, j.now, j.actor, j.now, j.now],
  );
  return Number(rows[0]!.id);
}

/**
 * Take the job's run lock: only if nobody holds it, or the holder is known dead (`takeOver`),
 * or its heartbeat is older than `staleBefore`. Returns false when another run holds it.
 */
export async function claimJob(tx: StoreTx, id: number, owner: string, now: string, staleBefore: string, takeOver: string | null): Promise<boolean> {
  const rows = await exec(
    tx,
    `update import_job set lock_owner = ?, heartbeat_at = ?, state = 'running', error = null, updated_at = ?, finished_at = null
     where id = ? and (lock_owner is null or lock_owner = ? or heartbeat_at < ?) returning id`,
    [owner, now, now, id, takeOver ?? owner, staleBefore],
  );
  return rows.length === 1;
}

export interface Checkpoint {
  rowsDone: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  rejectsBytes: number;
  elapsedMs: number;
  /** Streamed input: what was read by this checkpoint (kept as it was when absent). */
  inputPrefix?: InputPrefix;
  checksum?: string | null;
  format?: string;
  encoding?: string;
}

/** Advance the checkpoint; in the chunk's own transaction. False if the lock was lost. */
export async function saveCheckpoint(tx: StoreTx, id: number, owner: string, c: Checkpoint, now: string): Promise<boolean> {
  const rows = await exec(
    tx,
    `update import_job set rows_done = ?, inserted = ?, updated = ?, unchanged = ?, rejected = ?, rejects_bytes = ?, elapsed_ms = ?,
       input_prefix_bytes = coalesce(?, input_prefix_bytes), input_prefix_sha256 = coalesce(?, input_prefix_sha256), heartbeat_at = ?, updated_at = ?
     where id = ? and lock_owner = ? returning id`,
    [c.rowsDone, c.inserted, c.updated, c.unchanged, c.rejected, c.rejectsBytes, c.elapsedMs, c.inputPrefix?.bytes ?? null, c.inputPrefix?.sha256 ?? null, now, now, id, owner],
  );
  // Other hosts' workers drop their cached companies when this chunk commits.
  if (rows.length === 1) await announce(tx, { companies: 'all' });
  return rows.length === 1;
}

export async function heartbeat(tx: StoreTx, id: number, owner: string, now: string): Promise<void> {
  await exec(tx, 'update import_job set heartbeat_at = ? where id = ? and lock_owner = ? returning id', [now, id, owner]);
}

/** Record the input's format, encoding and rejects file once the header is read. */
export async function describeInput(tx: StoreTx, id: number, fields: { format: string; encoding: string; rejectsFile: string }): Promise<void> {
  await exec(tx, 'update import_job set format = ?, encoding = ?, rejects_file = ? where id = ? returning id', [
    fields.format,
    fields.encoding,
    fields.rejectsFile,
    id,
  ]);
}

export async function finishJob(tx: StoreTx, id: number, owner: string, state: JobState, c: Checkpoint, error: string | null, now: string): Promise<void> {
  await exec(
    tx,
    `update import_job set state = ?, error = ?, rows_done = ?, inserted = ?, updated = ?, unchanged = ?, rejected = ?, rejects_bytes = ?,
       elapsed_ms = ?, checksum = coalesce(?, checksum), lock_owner = null, heartbeat_at = null, updated_at = ?, finished_at = ?
     where id = ? and lock_owner = ? returning id`,
    [state, error, c.rowsDone, c.inserted, c.updated, c.unchanged, c.rejected, c.rejectsBytes, c.elapsedMs, c.checksum ?? null, now, now, id, owner],
  );
}

/** Release a lock without changing the state (a run that ends while the job stays resumable). */
export async function releaseJob(tx: StoreTx, id: number, owner: string, state: JobState, error: string | null, now: string): Promise<void> {
  await exec(tx, 'update import_job set state = ?, error = ?, lock_owner = null, updated_at = ? where id = ? and lock_owner = ? returning id', [
    state,
    error,
    now,
    id,
    owner,
  ]);
}
