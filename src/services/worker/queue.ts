// The submitting side of queued jobs: `import --queue` checks the input up front, then stages
// it into the store gzip-compressed (so a worker on any host can run it, even one that cannot
// read this host's files) and queues the job; `enrich --queue` queues its selection; `import
// wait` follows a job to its end. Services take ports and return results.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, openSync, readSync, closeSync, statSync, rmSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { CompanyctlError, ValidationError } from '../../errors.js';
import * as q from '../../infra/db/job-queue.js';
import type { QueuedJob } from '../../infra/db/job-queue.js';
import type { ImportJob } from '../../infra/db/import-jobs.js';
import type { Store } from '../../infra/db/store.js';
import { ensurePrivateDir } from '../../infra/paths.js';
import { describeImportKey, type ImportDeps, type ImportOptions } from '../import/index.js';
import { openReader, pipelineOptions } from '../import/reader.js';
import type { PipelineHeader } from '../import/rows.js';

export interface QueueDeps {
  store: () => Promise<Store>;
  now: () => Date;
  actor: string;
  role: string | null;
  /** Where stdin is spooled while it is checked and staged. */
  stateDir: string;
}

/** Pieces of the staged gzip stream: small enough for one row, one statement, one buffer. */
const PIECE_BYTES = 1 << 20;
/** Fast gzip: staging is on the submitter's clock (level 1: ~4x the speed of 6 for ~15% more bytes). */
const GZIP_LEVEL = 1;

/** What a queued import carries: the import's options, with the input staged in the store. */
export interface QueuedImport {
  /** What the user named (a path on the submitting host, or "-"), for listings. */
  source: string;
  /** The staged file's name on the worker: the input's name, `.gz` added when it was compressed here. */
  inputName: string;
  format: string | null;
  encoding: string | null;
  mapping: ImportOptions['mapping'];
  key: string;
  chunkSize: number;
  maxErrors: ImportOptions['maxErrors'] | null;
  rejectsFile: string | null;
  /** --set, --value, --date-format, templates and --records (absent: a plain import). */
  transform?: ImportOptions['transform'] | null;
  /** --max-record-size (characters) and --max-gzip-ratio, as given. */
  maxRecordChars?: number | null;
  maxGzipRatio?: number | null;
  /** SHA-256 of the staged bytes: a worker refuses input that does not match. */
  stagedSha256?: string;
}

export interface QueuedResult {
  jobId: number;
  state: 'queued';
  format: string;
  encoding: string;
  unknownColumns: string[];
  inputBytes: number;
  stagedBytes: number;
}

/**
 * `import <file> --queue`: everything that can be checked up front is (flags already, then the
 * header, mapping, encoding and the first rows), then the input is staged and the job queued.
 * Nothing is queued when a check fails.
 */
export async function queueImport(deps: QueueDeps, importDeps: ImportDeps, opts: ImportOptions, stdin: NodeJS.ReadableStream, notice: (m: string) => void): Promise<QueuedResult> {
  if (opts.dryRun) throw new CompanyctlError('COMPANYCTL_USAGE', '--queue: a dry run writes nothing; run it in the foreground', { field: '--queue' });
  let spool: string | undefined;
  try {
    let path: string;
    if (opts.source === '-') {
      // Read stdin once, into a private file: it is checked, then staged.
      const dir = join(deps.stateDir, 'queue');
      ensurePrivateDir(dir);
      spool = join(dir, `stdin-${randomUUID()}`);
      await pipeline(stdin, createWriteStream(spool, { mode: 0o600 }));
      path = spool;
    } else {
      path = resolve(opts.source);
      try {
        if (!statSync(path).isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new CompanyctlError('COMPANYCTL_USAGE', `cannot read ${opts.source}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'not a file' : (e as Error).message}`, { field: 'file' });
      }
    }
    const header = await preflight(importDeps, { ...opts, source: path }, deps.now());
    if (header.unknown.length) notice(`ignoring unknown columns: ${header.unknown.join(', ')} (map them with --map "column=field")`);
    const gz = isGzip(path);
    const name = opts.source === '-' ? `stdin.${header.format}` : basename(path);
    const job: QueuedImport = {
      source: opts.source === '-' ? '-' : path,
      inputName: gz ? name : `${name}.gz`,
      // The format it was checked with: the worker reads it the same way whatever the staged name.
      format: opts.format ?? header.format,
      encoding: opts.encoding ?? null,
      mapping: opts.mapping,
      key: describeImportKey(opts.key),
      chunkSize: opts.chunkSize,
      maxErrors: opts.maxErrors ?? null,
      rejectsFile: opts.rejectsFile ?? null,
      transform: opts.transform ?? null,
      maxRecordChars: opts.maxRecordChars ?? null,
      maxGzipRatio: opts.maxGzipRatio ?? null,
    };
    const inputBytes = statSync(path).size;
    const store = await deps.store();
    const now = deps.now().toISOString();
    const jobId = await store.transaction((tx) =>
      q.createQueuedJob(tx, { kind: 'import', options: job as unknown as Record<string, unknown>, actor: deps.actor, role: deps.role, inputName: job.inputName, inputBytes, now }),
    );
    let seq = 0;
    let staged = 0;
    const hash = createHash('sha256');
    const bytes = gz ? createReadStream(path) : createReadStream(path).pipe(createGzip({ level: GZIP_LEVEL }));
    for await (const piece of pieces(bytes)) {
      const n = seq++;
      staged += piece.length;
      hash.update(piece);
      await store.transaction((tx) => q.addInputPiece(tx, jobId, n, piece));
    }
    job.stagedSha256 = hash.digest('hex');
    await store.transaction((tx) => q.enqueue(tx, jobId, staged, job as unknown as Record<string, unknown>, deps.now().toISOString()));
    return { jobId, state: 'queued', format: header.format, encoding: header.encoding, unknownColumns: header.unknown, inputBytes, stagedBytes: staged };
  } finally {
    if (spool) rmSync(spool, { force: true });
  }
}

/** The header and the first rows, through the import's own reader: its errors are the import's errors. */
async function preflight(importDeps: ImportDeps, opts: ImportOptions, today: Date): Promise<PipelineHeader> {
  const src = openReader(importDeps, pipelineOptions(opts, 0, today, false, false));
  let header: PipelineHeader | undefined;
  try {
    for (;;) {
      const ev = await src.next();
      if (!ev) break;
      if (ev.type === 'header') header = ev.header;
      else if (ev.type === 'unknown') header?.unknown.push(...ev.columns);
      else if (ev.type === 'chunk') {
        const { chunk } = ev;
        // Some rejected rows are a partial import (exit 3 later); all of the first ones, a wrong file or mapping.
        if (chunk.lines.length === 0 && chunk.rejects.length > 0) {
          const r = chunk.rejects[0]!;
          throw new ValidationError(
            chunk.rejects.slice(0, 20).map((x) => ({ field: `line ${x.line}: ${x.field}`, message: x.reason })),
            `all of the first ${chunk.records} rows are rejected (line ${r.line}: ${r.field}: ${r.reason}); check the file, --key and --map; nothing was queued`,
          );
        }
        break;
      }
    }
  } finally {
    await src.close().catch(() => undefined);
  }
  if (!header) throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `${opts.source === '-' ? 'stdin' : opts.source}: no header or records`, { field: 'file' });
  return header;
}

function isGzip(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(2);
    return readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

async function* pieces(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const b of src) {
    parts.push(b);
    size += b.length;
    while (size >= PIECE_BYTES) {
      const all = Buffer.concat(parts);
      yield all.subarray(0, PIECE_BYTES);
      parts = [all.subarray(PIECE_BYTES)];
      size = parts[0]!.length;
    }
  }
  if (size > 0) yield Buffer.concat(parts);
}

/** `enrich --queue`: the selection and options as given; the worker's host supplies the API settings and key. */
export async function queueEnrich(deps: QueueDeps, options: Record<string, unknown>): Promise<{ jobId: number; state: 'queued' }> {
  const store = await deps.store();
  const jobId = await store.transaction(async (tx) => {
    const now = deps.now().toISOString();
    const id = await q.createQueuedJob(tx, { kind: 'enrich', options, actor: deps.actor, role: deps.role, now });
    await q.enqueue(tx, id, null, options, now);
    return id;
  });
  return { jobId, state: 'queued' };
}

// ---------------------------------------------------------------- waiting and listing

export async function getQueued(store: Store, id: number): Promise<QueuedJob> {
  const job = await q.getQueuedJob(store.read, id);
  if (!job) throw new CompanyctlError('COMPANYCTL_NOT_FOUND', `no queued job ${id}`, { hint: 'list jobs with "companyctl import list"' });
  return job;
}

/**
 * Block until job `id` ends (or `timeoutMs` passes: COMPANYCTL_WAIT_TIMEOUT). Polls the store,
 * quickly at first, then once a second.
 */
export async function waitForJob(store: Store, id: number, timeoutMs: number, signal?: AbortSignal): Promise<QueuedJob> {
  const until = Date.now() + timeoutMs;
  for (let pause = 100; ; pause = Math.min(pause * 2, 1_000)) {
    const job = await getQueued(store, id);
    if (q.FINAL_STATES.includes(job.state)) return job;
    if (signal?.aborted) throw new CompanyctlError('COMPANYCTL_CANCELLED', `stopped waiting for job ${id} (it is ${job.state}; it goes on)`);
    if (Date.now() >= until) {
      throw new CompanyctlError('COMPANYCTL_WAIT_TIMEOUT', `job ${id} is still ${job.state} after ${Math.round(timeoutMs / 1000)} s`, {
        hint: `it goes on; wait again with "companyctl import wait ${id}", or see "companyctl import list"`,
        data: { jobId: id, state: job.state, worker: job.lockedBy },
      });
    }
    await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(0, until - Date.now()))));
  }
}

/** Queued jobs of `kind`, newest first: waiting, running (with the worker holding each) and done. */
export async function listQueued(store: Store, kind: q.JobKind, limit: number): Promise<QueuedJob[]> {
  return q.listQueuedJobs(store.read, { kind, limit });
}

export interface QueuedRef {
  id: number;
  state: q.QueuedJobState;
  /** The worker holding it (host:pid:…), while it runs. */
  worker: string | null;
}

/** An `import list` row: an import job, or a queued import that has not become one yet (id null). */
export type ListedImport = (ImportJob | Omit<ImportJob, 'id'> & { id: null }) & { queuedJob: QueuedRef | null };

/**
 * `import list` with queued imports: each import job names the queued job it came from (and the
 * worker holding it); queued jobs that have not become an import job yet (waiting, or failed
 * before) come first. `state` filters those as it filters import jobs ('queued' = waiting).
 */
export async function withQueuedImports(store: Store, jobs: ImportJob[], opts: { limit: number; state?: string }): Promise<ListedImport[]> {
  const queued = await q.listQueuedJobs(store.read, { kind: 'import', limit: Math.max(opts.limit, 200) });
  const ref = (j: QueuedJob): QueuedRef => ({ id: j.id, state: j.state, worker: j.lockedBy });
  const byImport = new Map(queued.filter((j) => j.refId !== null).map((j) => [j.refId!, j]));
  const shownState = (j: QueuedJob) => (j.state === 'staging' ? 'queued' : j.state);
  const early = queued
    .filter((j) => j.refId === null && (!opts.state || shownState(j) === opts.state))
    .map((j): ListedImport => {
      const o = j.options as unknown as QueuedImport;
      return {
        id: null,
        source: o.source,
        identity: '',
        checksum: null,
        inputPrefix: null,
        format: o.format ?? 'auto',
        encoding: o.encoding ?? 'auto',
        options: j.options,
        state: shownState(j) as ImportJob['state'],
        rowsDone: 0,
        inserted: 0,
        updated: 0,
        unchanged: 0,
        rejected: 0,
        rejectsFile: null,
        rejectsBytes: 0,
        error: j.error,
        lockOwner: null,
        heartbeatAt: null,
        actor: j.actor,
        elapsedMs: 0,
        startedAt: j.startedAt ?? j.createdAt,
        updatedAt: j.updatedAt,
        finishedAt: j.finishedAt,
        queuedJob: ref(j),
      };
    });
  const rest = jobs.map((j): ListedImport => {
    const from = byImport.get(j.id);
    return { ...j, queuedJob: from ? ref(from) : null };
  });
  return [...early, ...rest].slice(0, opts.limit);
}
