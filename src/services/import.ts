// Batch import (DESIGN.md flow 5): the input is read, mapped and validated on a worker
// thread (import-pipeline.ts); this side takes its chunks through a p-queue and writes each
// one in its own transaction together with the job's checkpoint, so a killed import resumes
// from its last committed chunk and ends with exactly the file's rows. Rejected rows go to a
// rejects file (committed length in the checkpoint, so a resume never repeats one). One
// summary event per job lands in the outbox. Services never print: progress goes to a port.
import { existsSync, fdatasyncSync, ftruncateSync, openSync, closeSync, writeSync, fstatSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CompanyctlError, isCompanyctlError, type ErrorCode } from '../errors.js';
import type { FileCache } from '../infra/cache.js';
import type { SqlReader, Store, StoreTx } from '../infra/db/store.js';
import type { ImportJob, JobState, Checkpoint } from '../infra/db/import-jobs.js';
import type { ExistingRow, ImportWriter, SeenCompanies, Value } from '../infra/db/import-write.js';
import { ensurePrivateDir } from '../infra/paths.js';
import { fileChecksum, formatFromName, sourceSize, type InputFormat } from './import-input.js';
import type { InputField } from './import-mapping.js';
import {
  CELL_SEP,
  describeImportKey,
  EXTERNAL_BIT,
  IDX,
  KEY_FIELD,
  WIDTH,
  runPipeline,
  type Chunk,
  type ImportKey,
  type PipelineEvent,
  type PipelineHeader,
  type PipelineOptions,
  type Reject,
} from './import-pipeline.js';

export interface ImportDeps {
  store: () => Promise<Store>;
  cache?: FileCache;
  now: () => Date;
  actor: string;
  stdin: NodeJS.ReadableStream;
  /** Where default rejects files go (`<state>/imports/`). */
  stateDir: string;
  /** Off: parse in-thread (tests of the service run from source, where no worker file exists). */
  worker?: boolean;
  /** Smallest input (bytes) loaded as a bulk load on SQLite; default BULK_BYTES. */
  bulkBytes?: number;
}

export interface MaxErrors {
  count?: number;
  rate?: number;
}

export interface ImportOptions {
  source: string;
  format?: InputFormat;
  encoding?: string;
  /** squashed column -> field (null ignores), from --map / --mapping. */
  mapping: [string, InputField | null][];
  key: ImportKey;
  chunkSize: number;
  maxErrors?: MaxErrors;
  dryRun?: boolean;
  rejectsFile?: string;
}

export interface ImportProgress {
  start(info: { jobId: number | null; header: PipelineHeader; resumedFrom: number }): void;
  update(s: { records: number; rejected: number; bytes: number }): void;
  notice(message: string): void;
  stop(): void;
}

export const silentProgress: ImportProgress = { start() {}, update() {}, notice() {}, stop() {} };

export interface ImportSummary {
  jobId: number | null;
  state: JobState | 'dry-run';
  file: string;
  format: string;
  encoding: string;
  key: string;
  rows: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  /** Dry run: rows that passed validation. */
  valid?: number;
  seconds: number;
  rowsPerSecond: number;
  rejectsFile: string | null;
  unknownColumns: string[];
  ignoredColumns: string[];
  resumedFrom: number;
  eventId: number | null;
}

const STALE_MS = 10 * 60_000;
/**
 * Batches the reader may post before the writer has taken the previous one. Every batch parked
 * in the writer's message queue is main-thread heap, but at 600 rows (~200 KB) two of them
 * cost nothing, and they keep the writer busy through the reader's garbage collections.
 */
const PENDING_CHUNKS = 2;
/**
 * Rows per batch from the reader; a chunk (transaction) is one or more batches. Small, so a
 * batch dies young on both threads: its values array (20 a row) stays under V8's large-object
 * size (~128 KiB), which would put it straight into the old generation - at 2000 rows the
 * writer's heap grew by 320 KiB a batch until a full collection (peak RSS 263 vs 229 MB).
 */
const BATCH_ROWS = 600;
/**
 * A bulk load (an input of at least BULK_BYTES, and at least one row for every existing
 * company, at ~BULK_BYTES_PER_ROW) builds the secondary indexes once at the end.
 */
const BULK_BYTES = 32 << 20;
const BULK_BYTES_PER_ROW = 256;

/**
 * The in-file duplicate check: one bit per company id this run wrote or matched, in 8 KiB
 * pages of 65,536 ids (so a few far-apart ids cost a few pages, not a bitmap up to the largest).
 */
export class CompanyBitmap implements SeenCompanies {
  private pages = new Map<number, Uint32Array>();
  has(id: number): boolean {
    const page = this.pages.get(Math.floor(id / 65536));
    const bit = id % 65536;
    return page !== undefined && (page[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }
  add(id: number): void {
    const key = Math.floor(id / 65536);
    let page = this.pages.get(key);
    if (!page) this.pages.set(key, (page = new Uint32Array(2048)));
    const bit = id % 65536;
    page[bit >>> 5]! |= 1 << (bit & 31);
  }
}

// ---------------------------------------------------------------- rejects file

/** The rejects file: CSV for CSV/TSV input (line, field, reason, then the original columns), NDJSON otherwise. */
class RejectsFile {
  private fd: number | undefined;
  bytes = 0;
  constructor(
    readonly path: string,
    private readonly kind: 'csv' | 'ndjson',
  ) {}

  /** Open for appending after `committedBytes` (anything past it belongs to an uncommitted chunk). */
  open(committedBytes: number, columns: string[] | undefined): void {
    ensurePrivateDir(dirname(this.path));
    this.fd = openSync(this.path, existsSync(this.path) ? 'r+' : 'w+', 0o600);
    const size = fstatSync(this.fd).size;
    if (size > committedBytes) ftruncateSync(this.fd, committedBytes);
    this.bytes = Math.min(size, committedBytes);
    if (this.bytes === 0 && this.kind === 'csv') this.append(csvLine(['line', 'field', 'reason', ...(columns ?? [])]));
  }

  private append(s: string): void {
    const buf = Buffer.from(s, 'utf8');
    writeSync(this.fd!, buf, 0, buf.length, this.bytes);
    this.bytes += buf.length;
  }

  write(rejects: Reject[]): void {
    for (const r of rejects) {
      if (this.kind === 'csv') {
        this.append(csvLine([String(r.line), r.field, r.reason, ...(r.cells ?? [])]));
      } else {
        let row: unknown = r.text;
        try {
          row = r.text === undefined ? null : JSON.parse(r.text);
        } catch {
          // not JSON: keep the text as it was
        }
        this.append(`${JSON.stringify({ line: r.line, field: r.field, reason: r.reason, row })}\n`);
      }
    }
  }

  truncate(to: number): void {
    if (this.fd === undefined) return;
    ftruncateSync(this.fd, to);
    this.bytes = to;
  }

  sync(): void {
    if (this.fd !== undefined) fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

function csvLine(cells: string[]): string {
  return `${cells.map((c) => (/[",\r\n]/.test(c) || /^\s|\s$/.test(c) ? `"${c.replaceAll('"', '""')}"` : c)).join(',')}\r\n`;
}

// ---------------------------------------------------------------- event sources

interface EventSource {
  next(): Promise<PipelineEvent | undefined>;
  /** One chunk has been written: the reader may produce another. */
  granted(): void;
  close(): Promise<void>;
}

function inThreadSource(opts: PipelineOptions, stdin: NodeJS.ReadableStream): EventSource {
  const gen = runPipeline(opts, stdin);
  return {
    next: async () => {
      const r = await gen.next();
      return r.done ? undefined : r.value;
    },
    granted() {},
    close: async () => void (await gen.return(undefined)),
  };
}

export function workerFile(): URL | undefined {
  const url = new URL('./import-worker.js', import.meta.url);
  return existsSync(fileURLToPath(url)) ? url : undefined;
}

function workerSource(file: URL, opts: PipelineOptions, stdin: NodeJS.ReadableStream): EventSource {
  const worker = new Worker(file, {
    workerData: { options: opts, credits: PENDING_CHUNKS + 1 },
    stdin: opts.source === '-',
    stdout: false,
    // The reader's live heap is ~20 MB; the limits bound how far it grows before collecting
    // (RSS). A 16 MB young generation halves its scavenging time against 8 MB, for ~5 MB of RSS.
    resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
  });
  if (opts.source === '-' && worker.stdin) (stdin as NodeJS.ReadableStream).pipe(worker.stdin);
  const queue: (PipelineEvent | { type: 'error'; error: Record<string, unknown> } | { type: 'exit' })[] = [];
  let wake: (() => void) | undefined;
  let crashed: Error | undefined;
  const push = (ev: (typeof queue)[number]) => {
    queue.push(ev);
    wake?.();
  };
  worker.on('message', push);
  worker.on('error', (e) => {
    crashed = e;
    wake?.();
  });
  worker.on('exit', () => push({ type: 'exit' }));
  return {
    async next() {
      for (;;) {
        const ev = queue.shift();
        if (ev) {
          if (ev.type === 'exit') return undefined;
          if (ev.type === 'error') {
            const e = ev.error as { code: ErrorCode; message: string; hint?: string; field?: string; data?: Record<string, unknown>; known: boolean };
            if (e.known) throw new CompanyctlError(e.code, e.message, { hint: e.hint, field: e.field, data: e.data });
            throw new Error(e.message);
          }
          return ev;
        }
        if (crashed) throw crashed;
        await new Promise<void>((r) => (wake = r));
      }
    },
    granted: () => worker.postMessage({ credit: 1 }),
    close: async () => {
      if (opts.source === '-' && worker.stdin) (stdin as NodeJS.ReadableStream).unpipe(worker.stdin);
      await worker.terminate();
    },
  };
}

// ---------------------------------------------------------------- job identity and lock

function jobIdentity(checksum: string | null, opts: ImportOptions): string {
  if (!checksum) return `stdin:${randomUUID()}`;
  const spec = { checksum, key: describeImportKey(opts.key), format: opts.format ?? null, encoding: opts.encoding ?? null, mapping: [...opts.mapping].sort() };
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex');
}

const lockOwner = () => `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

/** Whether the run holding a lock is still alive: same host -> ask the OS; else its heartbeat. */
function ownerAlive(job: ImportJob, now: Date): boolean {
  if (!job.lockOwner) return false;
  const [host, pid] = job.lockOwner.split(':');
  if (host === hostname() && pid && /^\d+$/.test(pid)) {
    try {
      process.kill(Number(pid), 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  return !!job.heartbeatAt && now.getTime() - Date.parse(job.heartbeatAt) < STALE_MS;
}

function lockedError(job: ImportJob): CompanyctlError {
  const [host, pid] = (job.lockOwner ?? '').split(':');
  return new CompanyctlError(
    'COMPANYCTL_IMPORT_LOCKED',
    `import job ${job.id} (${job.source}) is already running (pid ${pid} on ${host}, last checkpoint ${job.heartbeatAt ?? 'none'}); not starting a second run`,
    { hint: `wait for it to finish, or see "companyctl import show ${job.id}"`, data: { jobId: job.id, owner: job.lockOwner } },
  );
}

// ---------------------------------------------------------------- the run

interface Counts {
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  rowsDone: number;
}

const jobs = () => import('../infra/db/import-jobs.js');
const writes = () => import('../infra/db/import-write.js');

/** Start an import, or resume the unfinished job of the same input and options. */
export async function runImport(deps: ImportDeps, opts: ImportOptions, progress: ImportProgress = silentProgress, signal?: AbortSignal): Promise<ImportSummary> {
  const source = opts.source === '-' ? '-' : resolve(opts.source);
  if (opts.dryRun) return dryRun(deps, { ...opts, source }, progress);
  const checksum = source === '-' ? null : await fileChecksum(source).catch((e: NodeJS.ErrnoException) => {
    throw new CompanyctlError('COMPANYCTL_USAGE', `cannot read ${opts.source}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, { field: 'file' });
  });
  const identity = jobIdentity(checksum, opts);
  const store = await deps.store();
  const j = await jobs();
  const owner = lockOwner();
  const now = deps.now();
  let job: ImportJob | undefined = await j.latestJob(store.read, identity);
  let resumed = false;
  if (job && (job.state === 'running' || job.state === 'failed' || job.state === 'cancelled')) {
    if (job.state === 'running' && ownerAlive(job, now)) throw lockedError(job);
    await claim(store, job, owner, now);
    resumed = true;
  } else {
    const id = await store
      .transaction((tx) =>
        j.createJob(tx, {
          source,
          identity,
          checksum,
          format: opts.format ?? formatFromName(source) ?? 'auto',
          encoding: opts.encoding ?? 'auto',
          options: jobOptions(opts),
          rejectsFile: opts.rejectsFile ? resolve(opts.rejectsFile) : '',
          lockOwner: owner,
          actor: deps.actor,
          now: now.toISOString(),
        }),
      )
      .catch(async (e) => {
        // Another run created the same job a moment ago (the unique running index).
        const other = await j.latestJob(store.read, identity);
        if (other?.state === 'running') throw lockedError(other);
        throw e;
      });
    job = (await j.getJob(store.read, id))!;
  }
  return execute(deps, store, job, owner, { ...opts, source }, progress, signal, resumed);
}

/** `import resume <job>`: continue a job from its checkpoint, with the options it started with. */
export async function resumeImport(deps: ImportDeps, jobId: number, input: string | undefined, progress: ImportProgress = silentProgress, signal?: AbortSignal): Promise<ImportSummary> {
  const store = await deps.store();
  const j = await jobs();
  const job = await j.getJob(store.read, jobId);
  if (!job) throw new CompanyctlError('COMPANYCTL_NOT_FOUND', `no import job ${jobId}`, { hint: 'list jobs with "companyctl import list"' });
  if (job.state === 'completed' || job.state === 'completed_with_rejects') {
    throw new CompanyctlError('COMPANYCTL_IMPORT_NOT_RESUMABLE', `import job ${jobId} is ${job.state.replaceAll('_', ' ')}; there is nothing to resume`, {
      hint: `run the import again to start a new job: companyctl import ${job.source}`,
    });
  }
  const now = deps.now();
  if (job.state === 'running' && ownerAlive(job, now)) throw lockedError(job);
  const source = input !== undefined ? (input === '-' ? '-' : resolve(input)) : job.source;
  if (source === '-' && input === undefined) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `import job ${jobId} read stdin: give the same input again with --input -`, { field: '--input' });
  }
  if (source !== '-') {
    const sum = await fileChecksum(source).catch(() => null);
    if (job.checksum && sum !== job.checksum) {
      throw new CompanyctlError('COMPANYCTL_IMPORT_INPUT_CHANGED', `${source} is not the input import job ${jobId} started with (its checksum differs)`, {
        hint: 'resume with the original file, or start a new import of the new file',
      });
    }
  }
  const owner = lockOwner();
  await claim(store, job, owner, now);
  // jobOptions() stores absent options as null.
  const o = job.options as { key: string; chunkSize: number; format: InputFormat | null; encoding: string | null; mapping: [string, InputField | null][]; maxErrors: MaxErrors | null };
  const [kind, src] = o.key.split(':') as [ImportKey['kind'], string | undefined];
  const opts: ImportOptions = {
    source,
    format: o.format ?? undefined,
    encoding: o.encoding ?? undefined,
    mapping: o.mapping,
    key: { kind, source: src },
    chunkSize: o.chunkSize,
    maxErrors: o.maxErrors ?? undefined,
    rejectsFile: job.rejectsFile || undefined,
  };
  return execute(deps, store, (await j.getJob(store.read, jobId))!, owner, opts, progress, signal, true);
}

async function claim(store: Store, job: ImportJob, owner: string, now: Date): Promise<void> {
  const j = await jobs();
  const ok = await store.transaction((tx) =>
    j.claimJob(tx, job.id, owner, now.toISOString(), new Date(now.getTime() - STALE_MS).toISOString(), job.lockOwner),
  );
  if (!ok) throw lockedError((await j.getJob(store.read, job.id)) ?? job);
}

function jobOptions(opts: ImportOptions): Record<string, unknown> {
  return {
    key: describeImportKey(opts.key),
    chunkSize: opts.chunkSize,
    format: opts.format ?? null,
    encoding: opts.encoding ?? null,
    mapping: opts.mapping,
    maxErrors: opts.maxErrors ?? null,
  };
}

function pipelineOptions(opts: ImportOptions, skipRecords: number, today: Date, hashInput: boolean, checkDuplicates: boolean): PipelineOptions {
  return {
    checkDuplicates,
    source: opts.source,
    format: opts.format,
    encoding: opts.encoding,
    explicit: opts.mapping,
    key: opts.key,
    chunkSize: Math.min(opts.chunkSize, BATCH_ROWS),
    skipRecords,
    today: today.toISOString(),
    hashInput,
  };
}

function openSource(deps: ImportDeps, p: PipelineOptions): EventSource {
  const file = deps.worker === false || process.env.COMPANYCTL_IMPORT_WORKER === '0' ? undefined : workerFile();
  return file ? workerSource(file, p, deps.stdin) : inThreadSource(p, deps.stdin);
}

function tooManyErrors(max: MaxErrors | undefined, c: Counts): string | undefined {
  if (!max) return undefined;
  if (max.count !== undefined && c.rejected > max.count) return `${c.rejected} rows rejected, more than --max-errors ${max.count}`;
  if (max.rate !== undefined && c.rowsDone >= 100 && c.rejected / c.rowsDone > max.rate) {
    return `${((c.rejected / c.rowsDone) * 100).toFixed(1)}% of ${c.rowsDone} rows rejected, more than --max-errors ${max.rate * 100}%`;
  }
  return undefined;
}

async function execute(
  deps: ImportDeps,
  store: Store,
  job: ImportJob,
  owner: string,
  opts: ImportOptions,
  progress: ImportProgress,
  signal: AbortSignal | undefined,
  resumed: boolean,
): Promise<ImportSummary> {
  const j = await jobs();
  const w = await writes();
  const { insertOutboxEvent } = await import('../infra/db/company-write.js');
  const { default: PQueue } = await import('p-queue');
  const started = Date.now();
  const counts: Counts = { inserted: job.inserted, updated: job.updated, unchanged: job.unchanged, rejected: job.rejected, rowsDone: job.rowsDone };
  const resumedFrom = resumed ? job.rowsDone : 0;
  const elapsedBefore = job.elapsedMs;
  const checkpoint = (extra: Partial<Checkpoint> = {}): Checkpoint => ({
    ...counts,
    rejectsBytes: rejects?.bytes ?? job.rejectsBytes,
    elapsedMs: elapsedBefore + (Date.now() - started),
    ...extra,
  });
  let rejects: RejectsFile | undefined;
  let header: PipelineHeader | undefined;
  let checksum: string | undefined;
  const seen = new CompanyBitmap();
  let insertFirst = true;
  let bulk = false;
  const src = openSource(deps, pipelineOptions(opts, job.rowsDone, deps.now(), opts.source === '-', false));
  const queue = new PQueue({ concurrency: 1 });
  let failure: unknown;
  let stopReason: { state: JobState; code: ErrorCode; message: string } | undefined;

  let ended = false;
  /** The reader's next batch of rows; header, unknown-column and end events are handled on the way. */
  const nextBatch = async (): Promise<Chunk | undefined> => {
    for (;;) {
      const ev = await src.next();
      if (!ev) {
        ended = true;
        return undefined;
      }
      if (ev.type === 'chunk') {
        if (!ev.chunk.replay) return ev.chunk;
        // Resume: relearn the keys of the committed part on the read connection, before (and
        // outside) any chunk transaction, so no write lock is held while the prefix is re-read.
        await relearnKeys(store.read, ev.chunk, opts.key, seen);
        src.granted();
        if (signal?.aborted) {
          stopReason ??= { state: 'cancelled', code: 'COMPANYCTL_CANCELLED', message: 'cancelled' };
          return undefined;
        }
        continue;
      }
      if (ev.type === 'header') {
        header = ev.header;
        const kind = header.format === 'csv' || header.format === 'tsv' ? 'csv' : 'ndjson';
        const path = opts.rejectsFile ? resolve(opts.rejectsFile) : job.rejectsFile || join(deps.stateDir, 'imports', `job-${job.id}-rejects.${kind}`);
        rejects = new RejectsFile(path, kind);
        rejects.open(job.rejectsBytes, header.columns);
        await store.transaction((tx) => j.describeInput(tx, job.id, { format: header!.format, encoding: header!.encoding, rejectsFile: path }));
        if (header.unknown.length) progress.notice(`ignoring unknown columns: ${header.unknown.join(', ')} (map them with --map "column=field")`);
        progress.start({ jobId: job.id, header, resumedFrom });
        if (resumedFrom > 0) progress.notice(`resuming import job ${job.id} after row ${resumedFrom}`);
      } else if (ev.type === 'unknown') {
        header?.unknown.push(...ev.columns);
        progress.notice(`ignoring unknown fields: ${ev.columns.join(', ')}`);
      } else if (ev.type === 'end') {
        checksum = ev.checksum;
      }
    }
  };

  /**
   * One chunk = one transaction: batches from the reader (5,000 rows at most each, so memory
   * stays small) are written until the chunk holds --chunk-size rows, then the checkpoint is
   * saved in the same transaction and it commits. Fewer, larger commits write each hot index
   * page fewer times.
   */
  const writeChunk = async () => {
    const first = await nextBatch(); // outside the transaction: the write lock is not held while the reader starts
    if (!first) return;
    const before = rejects!.bytes;
    const next = { ...counts };
    try {
      await store.transaction(async (tx) => {
        const writer = await w.openImportWriter(tx);
        let batch: Chunk | undefined = first;
        let records = 0;
        let rejected = false;
        while (batch) {
          const res = await writeRows(tx, writer, batch, opts.key, deps.now().toISOString(), seen, insertFirst);
          // New rows come in runs (a first load) and known ones too (a nightly re-run): try
          // the insert first while most rows of the last batch were new.
          insertFirst = res.inserted * 2 > batch.lines.length;
          const all = res.rejects.length ? [...batch.rejects, ...res.rejects].sort((a, b) => a.line - b.line) : batch.rejects;
          if (all.length) {
            rejects!.write(all);
            rejected = true;
          }
          next.inserted += res.inserted;
          next.updated += res.updated;
          next.unchanged += res.unchanged;
          next.rejected += all.length;
          next.rowsDone += batch.records;
          records += batch.records;
          src.granted();
          progress.update({ records: next.rowsDone, rejected: next.rejected, bytes: batch.bytes });
          if (records >= opts.chunkSize || tooManyErrors(opts.maxErrors, next) || signal?.aborted) break;
          batch = await nextBatch();
        }
        if (rejected) rejects!.sync();
        const ok = await j.saveCheckpoint(tx, job.id, owner, { ...checkpoint(), ...next, rejectsBytes: rejects!.bytes }, deps.now().toISOString());
        if (!ok) throw lockedError((await j.getJob(tx.read, job.id)) ?? job);
      });
      Object.assign(counts, next);
    } catch (e) {
      rejects!.truncate(before);
      throw e;
    }
    const tooMany = tooManyErrors(opts.maxErrors, counts);
    if (tooMany) stopReason ??= { state: 'failed', code: 'COMPANYCTL_IMPORT_TOO_MANY_ERRORS', message: tooMany };
    else if (signal?.aborted) stopReason ??= { state: 'cancelled', code: 'COMPANYCTL_CANCELLED', message: 'cancelled' };
  };

  try {
    bulk = await startBulkLoad(store, job, opts.source, deps.bulkBytes ?? BULK_BYTES, deps.now());
    if (bulk) progress.notice('bulk load: the name, country and updated-at indexes are built at the end');
    // The p-queue runs the chunk transactions one after another, in file order (the checkpoint
    // is a prefix of the file); the reader works ahead on its thread, bounded by its credits.
    while (!ended && !failure && !stopReason) await queue.add(writeChunk);
  } catch (e) {
    failure ??= e;
  } finally {
    queue.clear();
    await src.close().catch(() => undefined);
    if (bulk) {
      progress.notice('building the name, country and updated-at indexes ...');
      // The rows are committed whatever happens here: a failed build is a notice, and the note
      // in store_meta lets the next import or `db migrate` build what is missing.
      await endBulkLoad(store).catch((e) =>
        progress.notice(`could not build the indexes (${(e as Error)?.message ?? e}); "companyctl db migrate" builds them`),
      );
    }
    await store.transaction((tx) => w.releaseImportCache(tx)).catch(() => undefined);
    progress.stop();
  }
  if (!failure && !stopReason && signal?.aborted) stopReason = { state: 'cancelled', code: 'COMPANYCTL_CANCELLED', message: 'cancelled' };

  const now = () => deps.now().toISOString();
  const summary = (state: JobState, eventId: number | null): ImportSummary => {
    const seconds = (Date.now() - started) / 1000;
    const rowsThisRun = counts.rowsDone - resumedFrom;
    return {
      jobId: job.id,
      state,
      file: opts.source,
      format: header?.format ?? job.format,
      encoding: header?.encoding ?? job.encoding,
      key: describeImportKey(opts.key),
      rows: counts.rowsDone,
      inserted: counts.inserted,
      updated: counts.updated,
      unchanged: counts.unchanged,
      rejected: counts.rejected,
      seconds: Math.round(seconds * 1000) / 1000,
      rowsPerSecond: seconds > 0 ? Math.round(rowsThisRun / seconds) : rowsThisRun,
      rejectsFile: counts.rejected > 0 ? (rejects?.path ?? job.rejectsFile) : null,
      unknownColumns: header?.unknown ?? [],
      ignoredColumns: header?.ignored ?? [],
      resumedFrom,
      eventId,
    };
  };
  const finish = async (state: JobState, error: string | null): Promise<ImportSummary> => {
    const s0 = summary(state, null);
    const eventId = await store.transaction(async (tx) => {
      await j.finishJob(tx, job.id, owner, state, checkpoint({ checksum: checksum ?? null }), error, now());
      return insertOutboxEvent(tx, {
        type: `import.${state}`,
        companyId: null,
        actor: deps.actor,
        payload: { ...s0, error },
        createdAt: now(),
      });
    });
    return { ...s0, eventId };
  };

  rejects?.close();
  if (counts.inserted + counts.updated > 0) deps.cache?.clear();
  if (failure) {
    if (isCompanyctlError(failure) && failure.code === 'COMPANYCTL_IMPORT_LOCKED') throw failure;
    const message = isCompanyctlError(failure) ? failure.message : String((failure as Error)?.message ?? failure);
    // The failed chunk rolled back; its failure is recorded outside that transaction.
    await store
      .transaction(async (tx) => {
        await insertOutboxEvent(tx, {
          type: 'import.chunk_failed',
          companyId: null,
          actor: deps.actor,
          payload: { jobId: job.id, file: opts.source, afterRow: counts.rowsDone, error: message },
          createdAt: now(),
        });
      })
      .catch(() => undefined);
    const s = await finish('failed', message).catch(() => summary('failed', null));
    // Whatever stopped it (unreadable input, the store), the import failed: exit 1, with the cause's code in data.
    const known = isCompanyctlError(failure) ? failure : undefined;
    throw new CompanyctlError('COMPANYCTL_IMPORT_FAILED', `import job ${job.id} failed after ${counts.rowsDone} rows: ${message}`, {
      hint: `${known?.hint ? `${known.hint}; then ` : ''}resume with "companyctl import resume ${job.id}" (committed rows stay)`,
      field: known?.field,
      data: { cause: known?.code ?? 'COMPANYCTL_INTERNAL', summary: s },
      cause: failure,
    });
  }
  if (stopReason) {
    const s = await finish(stopReason.state, stopReason.message);
    throw new CompanyctlError(stopReason.code, `import job ${job.id} stopped after ${counts.rowsDone} rows: ${stopReason.message}`, {
      hint:
        stopReason.state === 'cancelled'
          ? `resume with "companyctl import resume ${job.id}"`
          : `see the rejects in ${rejects?.path}; committed rows stay`,
      data: { summary: s },
    });
  }
  return finish(counts.rejected > 0 ? 'completed_with_rejects' : 'completed', null);
}

// ---------------------------------------------------------------- one chunk

interface ChunkResult {
  inserted: number;
  updated: number;
  unchanged: number;
  rejects: Reject[];
}

const keyOf = (parts: readonly unknown[]) => parts.map(String).join('\u0000');

function parseExt(json: string | null): [string, string][] | undefined {
  return json === null ? undefined : (JSON.parse(json) as [string, string][]);
}

const sameExt = (a: [string, string][], b: [string, string][]) =>
  a.length === b.length && a.every((x, i) => x[0] === b[i]![0] && x[1] === b[i]![1]);

/** Upsert one chunk's rows on the import key; returns counts and the rows it had to reject. */
export async function writeRows(
  tx: StoreTx,
  w: ImportWriter,
  chunk: Chunk,
  key: ImportKey,
  now: string,
  seen: SeenCompanies,
  insertFirst = false,
): Promise<ChunkResult> {
  const n = chunk.lines.length;
  const res: ChunkResult = { inserted: 0, updated: 0, unchanged: 0, rejects: [] };
  const rejected = new Uint8Array(n);
  const rowValues = (i: number) => chunk.values.slice(i * WIDTH, (i + 1) * WIDTH) as Value[];
  const reject = (i: number, field: string, reason: string) => {
    rejected[i] = 1;
    const o = chunk.originals[i]!;
    const isJson = o.startsWith('{');
    res.rejects.push({ line: chunk.lines[i]!, field, reason, cells: isJson ? undefined : o.split(CELL_SEP), text: isJson ? o : undefined });
  };
  const keyField = KEY_FIELD[key.kind];
  const duplicate = (i: number, companyId: number) => {
    const v = chunk.values;
    const base = i * WIDTH;
    const ext = key.kind === 'external' ? (parseExt(chunk.externalIds[i]!) ?? []).find((p) => !key.source || p[0] === key.source) : undefined;
    const shown =
      key.kind === 'external'
        ? `${ext?.[0]}:${ext?.[1]}`
        : key.kind === 'registration'
          ? `${v[base + IDX.registrationCountry]} ${v[base + IDX.registrationNumber]}`
          : String(v[base + IDX[key.kind]]);
    reject(i, keyField, `repeats the ${describeImportKey(key)} key ${shown} of an earlier row in this file (company ${companyId})`);
  };
  const explainClash = async (values: Value[], exceptId?: number) => {
    const { findKeyHolders } = await import('../infra/db/company-read.js');
    const c = {
      domain: values[IDX.domain] as string | null,
      lei: values[IDX.lei] as string | null,
      registrationCountry: values[IDX.registrationCountry] as string | null,
      registrationNumber: values[IDX.registrationNumber] as string | null,
    };
    const { keysOf } = await import('../domain/company.js');
    const h = (await findKeyHolders(tx.read, keysOf(c), [], exceptId))[0];
    if (!h) return { field: 'record', reason: 'a unique key (domain, LEI or registration) is already held by another company' };
    const field = h.key.startsWith('domain') ? 'domain' : h.key.startsWith('lei') ? 'lei' : 'registrationNumber';
    const earlier = seen.has(h.companyId) ? ', written by an earlier row of this file' : '';
    return { field, reason: `${h.key} is already held by company ${h.companyId}${earlier}`, holder: h.companyId };
  };
  /** A failed insert: a repeat of an earlier row's import key, or a clash with another company's key. */
  const rejectClash = async (i: number, values: Value[], exceptId?: number) => {
    const c = await explainClash(values, exceptId);
    if (c.holder !== undefined && c.field === keyField && exceptId === undefined && seen.has(c.holder)) duplicate(i, c.holder);
    else reject(i, c.field, c.reason);
  };

  // SQLite without external ids: the per-row bulk path.
  if (w.upsertRows && key.kind !== 'external' && !chunk.masks.some((m) => m & EXTERNAL_BIT)) {
    const { ROW } = await import('../infra/db/import-write.js');
    const { outcomes, ids } = w.upsertRows(key.kind, { values: chunk.values, masks: chunk.masks }, now, seen, insertFirst);
    for (let i = 0; i < n; i++) {
      switch (outcomes[i]) {
        case ROW.INSERTED:
          res.inserted++;
          break;
        case ROW.UPDATED:
          res.updated++;
          break;
        case ROW.UNCHANGED:
          res.unchanged++;
          break;
        case ROW.DUPLICATE:
          duplicate(i, ids[i]!);
          break;
        case ROW.STALE:
          reject(i, 'record', `company ${ids[i]} was changed by another writer during the import; run it again`);
          break;
        default: {
          // A clash: the row's own values for the fields it gave decide which key is held.
          const values = rowValues(i).map((v, f) => (chunk.masks[i]! & (1 << f) ? v : null));
          const c = await explainClash(values, outcomes[i] === ROW.UPDATE_CLASH ? ids[i] : undefined);
          if (c.holder === undefined && outcomes[i] === ROW.INSERT_CLASH) {
            // OR IGNORE also skips NOT NULL and CHECK failures: insert it again without it, so
            // such a row is written or the store's own error stops the chunk.
            const [id] = await w.insert([rowValues(i)], now);
            if (id !== null && id !== undefined) {
              res.inserted++;
              seen.add(id);
              break;
            }
          }
          await rejectClash(i, values, outcomes[i] === ROW.UPDATE_CLASH ? ids[i] : undefined);
        }
      }
    }
    return res;
  }

  const ext = chunk.externalIds.map(parseExt);

  // Every external id the chunk mentions, and who holds it now.
  const pairs: [string, string][] = [];
  for (const e of ext) if (e) pairs.push(...e);
  const holders = pairs.length ? await w.externalHolders(pairs) : new Map<string, number>();

  // 1. The company each row's key points at.
  const existing: (ExistingRow | undefined)[] = new Array(n);
  if (key.kind !== 'external') {
    const keys: string[][] = [];
    for (let i = 0; i < n; i++) {
      const base = i * WIDTH;
      keys.push(
        key.kind === 'registration'
          ? [chunk.values[base + IDX.registrationCountry] as string, chunk.values[base + IDX.registrationNumber] as string]
          : [chunk.values[base + IDX[key.kind]] as string],
      );
    }
    const found = await w.findByKey(key.kind, keys);
    for (let i = 0; i < n; i++) existing[i] = found.get(keyOf(keys[i]!));
  } else {
    const target: (number | undefined)[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const mine = (ext[i] ?? []).filter((p) => !key.source || p[0] === key.source);
      const ids = [...new Set(mine.map((p) => holders.get(`${p[0]}:${p[1]}`)).filter((x): x is number => x !== undefined))];
      if (ids.length > 1) reject(i, 'externalIds', `its external ids belong to different companies (${ids.join(', ')})`);
      else target[i] = ids[0];
    }
    const byId = await w.findById([...new Set(target.filter((x): x is number => x !== undefined))]);
    for (let i = 0; i < n; i++) {
      const id = target[i];
      if (rejected[i] || id === undefined) continue;
      const row = byId.get(id);
      if (!row || row.deleted) reject(i, 'externalIds', `its external id belongs to deleted company ${id} (restore it, or delete it with --hard)`);
      else existing[i] = row;
    }
  }

  // A row leading to a company an earlier row of this import wrote or matched repeats a key.
  for (let i = 0; i < n; i++) {
    const cur = existing[i];
    if (!cur || rejected[i]) continue;
    if (seen.has(cur.id)) duplicate(i, cur.id);
    else seen.add(cur.id);
  }

  // 2. External ids: the stored ones of matched companies, and clashes with other companies
  //    or with other rows of this chunk.
  const extIdsOf = await w.externalIdsOf([...new Set(existing.filter((e, i) => e && ext[i]).map((e) => e!.id))]);
  const claimed = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    if (rejected[i] || !ext[i]) continue;
    for (const [s, id] of ext[i]!) {
      const k = `${s}:${id}`;
      const holder = holders.get(k);
      if (holder !== undefined && holder !== existing[i]?.id) {
        reject(i, 'externalIds', `${k} is already held by company ${holder}`);
        break;
      }
      const other = claimed.get(k);
      if (other !== undefined && other !== i) {
        reject(i, 'externalIds', `${k} is also given on line ${chunk.lines[other]}`);
        break;
      }
      claimed.set(k, i);
    }
  }

  // 3. Decide: insert, update (only the fields the input gave), or leave unchanged.
  const inserts: number[] = [];
  const updates: { i: number; id: number; version: number; values: Value[] }[] = [];
  const extSets: { companyId: number; ids: [string, string][] }[] = [];
  for (let i = 0; i < n; i++) {
    if (rejected[i]) continue;
    const mask = chunk.masks[i]!;
    const values = rowValues(i);
    const cur = existing[i];
    if (!cur) {
      inserts.push(i);
      continue;
    }
    let changed = false;
    const merged = cur.values.slice();
    for (let f = 0; f < WIDTH; f++) {
      if (mask & (1 << f) && merged[f] !== values[f]) {
        merged[f] = values[f]!;
        changed = true;
      }
    }
    const extChanged = !!(mask & EXTERNAL_BIT) && !sameExt(extIdsOf.get(cur.id) ?? [], ext[i]!);
    if (!changed && !extChanged) {
      res.unchanged++;
      continue;
    }
    updates.push({ i, id: cur.id, version: cur.version, values: merged });
    if (extChanged) extSets.push({ companyId: cur.id, ids: ext[i]! });
  }

  // 4. Write.
  const ids = await w.insert(
    inserts.map((i) => rowValues(i)),
    now,
  );
  for (let k = 0; k < inserts.length; k++) {
    const i = inserts[k]!;
    const id = ids[k];
    if (id === null || id === undefined) {
      await rejectClash(i, rowValues(i));
      continue;
    }
    res.inserted++;
    seen.add(id);
    if (ext[i]?.length) extSets.push({ companyId: id, ids: ext[i]! });
  }
  const outcomes = await w.update(updates, now);
  const failedUpdates = new Set<number>();
  for (let k = 0; k < updates.length; k++) {
    const u = updates[k]!;
    if (outcomes[k] === 'ok') {
      res.updated++;
      continue;
    }
    failedUpdates.add(u.id);
    if (outcomes[k] === 'stale') reject(u.i, 'record', `company ${u.id} was changed by another writer during the import; run it again`);
    else await rejectClash(u.i, u.values, u.id);
  }
  await w.setExternalIds(extSets.filter((s) => !failedUpdates.has(s.companyId)));
  return res;
}

/**
 * Resume: mark the companies the rows of the committed part of the file led to, so a later
 * row repeating one of their keys is still caught. Reads committed data on the read connection,
 * one query per batch, and marks what step 1 of writeRows would have matched.
 */
async function relearnKeys(read: SqlReader, chunk: Chunk, key: ImportKey, seen: SeenCompanies): Promise<void> {
  const n = chunk.lines.length;
  const v = chunk.values;
  if (n === 0) return;
  if (key.kind === 'external') {
    const rows = chunk.externalIds.map((e) => (parseExt(e) ?? []).filter((p) => !key.source || p[0] === key.source));
    const pairs = rows.flat();
    if (pairs.length === 0) return;
    const holders = new Map<string, number>();
    // At most 200 terms a query: SQLite caps an expression's depth at 1000.
    for (let k = 0; k < pairs.length; k += 200) {
      const part = pairs.slice(k, k + 200);
      for (const r of await read.all<{ source: string; external_id: string; company_id: unknown }>(
        `select source, external_id, company_id from company_external_id where ${part.map(() => '(source = ? and external_id = ?)').join(' or ')}`,
        part.flat(),
      )) {
        holders.set(`${r.source}:${r.external_id}`, Number(r.company_id));
      }
    }
    for (const mine of rows) {
      const ids = new Set(mine.map((p) => holders.get(`${p[0]}:${p[1]}`)).filter((x): x is number => x !== undefined));
      if (ids.size === 1) seen.add([...ids][0]!);
    }
    return;
  }
  for (let k = 0; k < n; k += 200) {
    const end = Math.min(n, k + 200);
    let where: string;
    const params: unknown[] = [];
    if (key.kind === 'registration') {
      where = Array.from({ length: end - k }, () => '(registration_country = ? and registration_number = ?)').join(' or ');
      for (let i = k; i < end; i++) params.push(v[i * WIDTH + IDX.registrationCountry], v[i * WIDTH + IDX.registrationNumber]);
    } else {
      where = `${key.kind} in (${Array.from({ length: end - k }, () => '?').join(', ')})`;
      for (let i = k; i < end; i++) params.push(v[i * WIDTH + IDX[key.kind]]);
    }
    for (const r of await read.all<{ id: unknown }>(`select id from company where deleted_at is null and (${where})`, params)) seen.add(Number(r.id));
  }
}

/**
 * Whether this import is a bulk load on SQLite; if so its deferrable indexes are dropped now.
 * Otherwise, indexes a bulk load left dropped are built - unless that load is still running.
 */
async function startBulkLoad(store: Store, job: ImportJob, source: string, minBytes: number, now: Date): Promise<boolean> {
  if (store.dialect !== 'sqlite') return false;
  const w = await writes();
  const j = await jobs();
  const size = sourceSize(source) ?? 0;
  const rows = await store.read.all<{ n: number | null }>('select max(id) as n from company');
  const bulk = size > 0 && size >= minBytes && size / BULK_BYTES_PER_ROW >= Number(rows[0]?.n ?? 0);
  if (bulk) {
    await store.transaction((tx) => w.deferIndexes(tx, job.id));
    return true;
  }
  const noted = await w.deferredBy(store.read);
  if (noted === undefined) return false;
  const other = noted === job.id ? undefined : await j.getJob(store.read, noted);
  if (other?.state === 'running' && ownerAlive(other, now)) return false;
  await store.transaction((tx) => w.restoreIndexes(tx));
  return false;
}

/** Build the deferred indexes one transaction each (each holds the write lock for one sort). */
async function endBulkLoad(store: Store): Promise<void> {
  const w = await writes();
  for (const ix of w.DEFERRABLE_INDEXES) await store.transaction((tx) => w.restoreIndexes(tx, ix.name));
  await store.transaction((tx) => w.restoreIndexes(tx));
}

// ---------------------------------------------------------------- dry run

async function dryRun(deps: ImportDeps, opts: ImportOptions, progress: ImportProgress): Promise<ImportSummary> {
  const started = Date.now();
  const src = openSource(deps, pipelineOptions(opts, 0, deps.now(), false, true));
  let header: PipelineHeader | undefined;
  let records = 0;
  let valid = 0;
  let rejected = 0;
  let rejects: RejectsFile | undefined;
  try {
    for (;;) {
      const ev = await src.next();
      if (!ev) break;
      if (ev.type === 'header') {
        header = ev.header;
        if (header.unknown.length) progress.notice(`ignoring unknown columns: ${header.unknown.join(', ')} (map them with --map "column=field")`);
        progress.start({ jobId: null, header, resumedFrom: 0 });
        if (opts.rejectsFile) {
          rejects = new RejectsFile(resolve(opts.rejectsFile), header.format === 'csv' || header.format === 'tsv' ? 'csv' : 'ndjson');
          rejects.open(0, header.columns);
        }
      } else if (ev.type === 'unknown') {
        header?.unknown.push(...ev.columns);
      } else if (ev.type === 'chunk') {
        records += ev.chunk.records;
        valid += ev.chunk.lines.length;
        rejected += ev.chunk.rejects.length;
        rejects?.write(ev.chunk.rejects);
        for (const r of ev.chunk.rejects.slice(0, Math.max(0, 20 - (rejected - ev.chunk.rejects.length)))) {
          progress.notice(`line ${r.line}: ${r.field}: ${r.reason}`);
        }
        progress.update({ records, rejected, bytes: ev.chunk.bytes });
        src.granted();
      }
    }
  } finally {
    await src.close().catch(() => undefined);
    rejects?.close();
    progress.stop();
  }
  const seconds = (Date.now() - started) / 1000;
  return {
    jobId: null,
    state: 'dry-run',
    file: opts.source,
    format: header?.format ?? 'unknown',
    encoding: header?.encoding ?? 'unknown',
    key: describeImportKey(opts.key),
    rows: records,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    rejected,
    valid,
    seconds: Math.round(seconds * 1000) / 1000,
    rowsPerSecond: seconds > 0 ? Math.round(records / seconds) : records,
    rejectsFile: rejects && rejected > 0 ? rejects.path : null,
    unknownColumns: header?.unknown ?? [],
    ignoredColumns: header?.ignored ?? [],
    resumedFrom: 0,
    eventId: null,
  };
}

// ---------------------------------------------------------------- list / show

export async function listImportJobs(deps: Pick<ImportDeps, 'store'>, opts: { limit: number; state?: JobState }): Promise<ImportJob[]> {
  const store = await deps.store();
  return (await jobs()).listJobs(store.read, opts);
}

export async function getImportJob(deps: Pick<ImportDeps, 'store'>, id: number): Promise<ImportJob> {
  const store = await deps.store();
  const job = await (await jobs()).getJob(store.read, id);
  if (!job) throw new CompanyctlError('COMPANYCTL_NOT_FOUND', `no import job ${id}`, { hint: 'list jobs with "companyctl import list"' });
  return job;
}
