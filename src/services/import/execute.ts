// The chunk loop of a real run: the reader's batches are written one chunk (transaction) at a
// time, each together with the job's checkpoint, so a killed import resumes from its last
// committed chunk and ends with exactly the file's rows. Rejects go to the rejects file, whose
// committed length is in the same checkpoint. finish.ts closes the job.
import { join, resolve } from 'node:path';
import type { ImportJob } from '../../infra/db/import-jobs.js';
import type { Store } from '../../infra/db/store.js';
import { BULK_BYTES, endBulkLoad, startBulkLoad } from './bulk.js';
import { CompanyBitmap, relearnKeys } from './duplicates.js';
import { FORMATS } from './formats.js';
import { endRun, type RunState, type StopReason } from './finish.js';
import { lockedError } from './lock.js';
import { openReader, pipelineOptions, type EventSource } from './reader.js';
import { RejectsFile } from './rejects.js';
import { isStreamedJob } from './source.js';
import type { Chunk, Reject } from './rows.js';
import type { ImportDeps, ImportOptions, ImportProgress, ImportSummary, MaxErrors } from './types.js';
import { openChunkWriter, type ChunkResult } from './write.js';

export interface Counts {
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  rowsDone: number;
}

const jobs = () => import('../../infra/db/import-jobs.js');
const writes = () => import('../../infra/db/import-write.js');

function tooManyErrors(max: MaxErrors | undefined, c: Counts): string | undefined {
  if (!max) return undefined;
  if (max.count !== undefined && c.rejected > max.count) return `${c.rejected} rows rejected, more than --max-errors ${max.count}`;
  if (max.rate !== undefined && c.rowsDone >= 100 && c.rejected / c.rowsDone > max.rate) {
    return `${((c.rejected / c.rowsDone) * 100).toFixed(1)}% of ${c.rowsDone} rows rejected, more than --max-errors ${max.rate * 100}%`;
  }
  return undefined;
}

const cancelled: StopReason = { state: 'cancelled', code: 'COMPANYCTL_CANCELLED', message: 'cancelled' };

/** Run a claimed job from its checkpoint to the end of the input (or a stop), and close it. */
export async function execute(
  deps: ImportDeps,
  store: Store,
  job: ImportJob,
  owner: string,
  opts: ImportOptions,
  progress: ImportProgress,
  signal: AbortSignal | undefined,
  resumed: boolean,
): Promise<ImportSummary> {
  const { default: PQueue } = await import('p-queue');
  const run: RunState = {
    deps,
    store,
    job,
    owner,
    opts,
    started: Date.now(),
    counts: { inserted: job.inserted, updated: job.updated, unchanged: job.unchanged, rejected: job.rejected, rowsDone: job.rowsDone },
    resumedFrom: resumed ? job.rowsDone : 0,
  };
  // A streamed input (no checksum up front) is hashed as it is read; a resume proves its prefix.
  const streamed = isStreamedJob(job);
  const verify = streamed && job.rowsDone > 0 ? (job.inputPrefix ?? undefined) : undefined;
  const src = openReader(deps, pipelineOptions(opts, job.rowsDone, deps.now(), streamed, false, verify));
  const loop = new ChunkLoop(run, src, progress, signal, resumed);
  const queue = new PQueue({ concurrency: 1 });
  let bulk = false;
  try {
    bulk = await startBulkLoad(store, job, opts.source, deps.bulkBytes ?? BULK_BYTES, deps.now());
    if (bulk) progress.notice('bulk load: the name, country and updated-at indexes are built at the end');
    // The p-queue runs the chunk transactions one after another, in file order (the checkpoint
    // is a prefix of the file); the reader works ahead on its thread, bounded by its credits.
    while (!loop.ended && !loop.failure && !loop.stopReason) await queue.add(() => loop.writeChunk());
  } catch (e) {
    loop.failure ??= e;
  } finally {
    queue.clear();
    await src.close().catch(() => undefined);
    if (bulk && signal?.aborted) {
      // Stopping at once: the rows are committed; the note in store_meta has the next import or `db migrate` build them.
      progress.notice('the name, country and updated-at indexes are built by the next import or "companyctl db migrate"');
    } else if (bulk) {
      progress.notice('building the name, country and updated-at indexes ...');
      // The rows are committed whatever happens here: a failed build is a notice, and the note
      // in store_meta lets the next import or `db migrate` build what is missing.
      await endBulkLoad(store).catch((e) =>
        progress.notice(`could not build the indexes (${(e as Error)?.message ?? e}); "companyctl db migrate" builds them`),
      );
    }
    const w = await writes();
    await store.transaction((tx) => w.releaseImportCache(tx)).catch(() => undefined);
    progress.stop();
  }
  if (!loop.failure && !loop.stopReason && signal?.aborted) loop.stopReason = cancelled;
  run.rejects?.close();
  return endRun(run, loop.failure, loop.stopReason);
}

/** The reader's events turned into chunk transactions. */
class ChunkLoop {
  ended = false;
  failure: unknown;
  stopReason: StopReason | undefined;
  private readonly seen = new CompanyBitmap();
  /** Try the insert before the lookup while most rows of the last batch were new. */
  private insertFirst = true;

  constructor(
    private readonly run: RunState,
    private readonly src: EventSource,
    private readonly progress: ImportProgress,
    private readonly signal: AbortSignal | undefined,
    private readonly resumed: boolean,
  ) {
    this.stopped = new Promise((resolve) => signal?.addEventListener('abort', () => resolve(undefined), { once: true }));
  }

  private readonly stopped: Promise<undefined>;

  /** The reader's next batch of rows; header, unknown-column and end events are handled on the way. */
  async nextBatch(): Promise<Chunk | undefined> {
    const { run, src } = this;
    for (;;) {
      // A stop signal ends the wait for the reader at once (a long record, a silent pipe):
      // the chunk in flight commits what it has, and the reader is closed.
      const ev = this.signal?.aborted ? undefined : await Promise.race([src.next(), this.stopped]);
      if (!ev && this.signal?.aborted) {
        this.stopReason ??= cancelled;
        return undefined;
      }
      if (!ev) {
        this.ended = true;
        return undefined;
      }
      if (ev.type === 'chunk') {
        if (!ev.chunk.replay) return ev.chunk;
        // Resume: relearn the keys of the committed part on the read connection, before (and
        // outside) any chunk transaction, so no write lock is held while the prefix is re-read.
        await relearnKeys(run.store.read, ev.chunk, run.opts.key, this.seen);
        src.granted();
        if (this.signal?.aborted) {
          this.stopReason ??= cancelled;
          return undefined;
        }
        continue;
      }
      if (ev.type === 'header') await this.onHeader(ev.header);
      else if (ev.type === 'unknown') {
        run.header?.unknown.push(...ev.columns);
        this.progress.notice(`ignoring unknown fields: ${ev.columns.join(', ')}`);
      } else if (ev.type === 'end') {
        run.checksum = ev.checksum;
      }
    }
  }

  private async onHeader(header: NonNullable<RunState['header']>): Promise<void> {
    const { run, progress } = this;
    const { job, opts } = run;
    run.header = header;
    const kind = FORMATS[header.format].rejects;
    const path = opts.rejectsFile ? resolve(opts.rejectsFile) : job.rejectsFile || join(run.deps.stateDir, 'imports', `job-${job.id}-rejects.${kind}`);
    run.rejects = new RejectsFile(path, kind);
    // The default path is ours (a leftover of an earlier store may sit there): replaced, never followed.
    const replace = !!opts.force || (!opts.rejectsFile && !job.rejectsFile);
    run.rejects.open(job.rejectsBytes, header.columns, { resume: this.resumed && path === job.rejectsFile, replace, input: opts.source });
    const j = await jobs();
    await run.store.transaction((tx) => j.describeInput(tx, job.id, { format: header.format, encoding: header.encoding, rejectsFile: path }));
    if (header.unknown.length) progress.notice(`ignoring unknown columns: ${header.unknown.join(', ')} (map them with --map "column=field")`);
    progress.start({ jobId: job.id, header, resumedFrom: run.resumedFrom });
    if (run.resumedFrom > 0) progress.notice(`resuming import job ${job.id} after row ${run.resumedFrom}`);
  }

  /**
   * One chunk = one transaction: batches from the reader (a few hundred rows each, so memory
   * stays small) are written until the chunk holds --chunk-size rows, then the checkpoint is
   * saved in the same transaction and it commits. Fewer, larger commits write each hot index
   * page fewer times.
   */
  async writeChunk(): Promise<void> {
    const { run, progress, signal } = this;
    const { job, opts, counts } = run;
    const first = await this.nextBatch(); // outside the transaction: the write lock is not held while the reader starts
    if (!first) return;
    const j = await jobs();
    const rejects = run.rejects!;
    const before = rejects.bytes;
    const next = { ...counts };
    try {
      await run.store.transaction(async (tx) => {
        const writer = await openChunkWriter(tx, opts.key, this.seen, () => run.deps.now().toISOString(), () => this.insertFirst);
        const pending: Reject[] = [];
        const count = (res: ChunkResult) => {
          next.inserted += res.inserted;
          next.updated += res.updated;
          next.unchanged += res.unchanged;
          next.rejected += res.rejects.length;
          pending.push(...res.rejects);
        };
        let batch: Chunk | undefined = first;
        let records = 0;
        let inputPrefix = first.prefix;
        while (batch) {
          inputPrefix = batch.prefix ?? inputPrefix;
          const res = await writer.add(batch);
          // New rows come in runs (a first load) and known ones too (a nightly re-run): try
          // the insert first while most rows of the last batch were new.
          this.insertFirst = res.inserted * 2 > batch.lines.length;
          count({ ...res, rejects: [...batch.rejects, ...res.rejects] });
          next.rowsDone += batch.records;
          records += batch.records;
          this.src.granted();
          progress.update({ records: next.rowsDone, rejected: next.rejected, bytes: batch.bytes });
          if (records >= opts.chunkSize || tooManyErrors(opts.maxErrors, next) || signal?.aborted) break;
          batch = await this.nextBatch();
        }
        count(await writer.end(run.deps.now().toISOString()));
        if (pending.length) {
          rejects.write(pending.sort((a, b) => a.line - b.line));
          rejects.sync();
        }
        const elapsedMs = job.elapsedMs + (Date.now() - run.started);
        const ok = await j.saveCheckpoint(tx, job.id, run.owner, { ...next, rejectsBytes: rejects.bytes, elapsedMs, inputPrefix }, run.deps.now().toISOString());
        if (!ok) throw lockedError((await j.getJob(tx.read, job.id)) ?? job);
      });
      Object.assign(counts, next);
    } catch (e) {
      rejects.truncate(before);
      throw e;
    }
    const tooMany = tooManyErrors(opts.maxErrors, counts);
    if (tooMany) this.stopReason ??= { state: 'failed', code: 'COMPANYCTL_IMPORT_TOO_MANY_ERRORS', message: tooMany };
    else if (signal?.aborted) this.stopReason ??= cancelled;
  }
}
