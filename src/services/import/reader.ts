// The reader: the read stage (read.ts) as a stream of events for the writer, on a worker
// thread in the built binary (reader-worker.ts) or in-thread (tests run from source, where no
// worker file exists; COMPANYCTL_IMPORT_WORKER=0). The writer grants a credit per chunk taken,
// so the reader works ahead by a few chunks at most.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CompanyctlError, type ErrorCode } from '../../errors.js';
import type { InputPrefix } from '../../infra/db/import-jobs.js';
import { runPipeline, type PipelineOptions } from './read.js';
import type { PipelineEvent } from './rows.js';
import type { ImportDeps, ImportOptions } from './types.js';

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

export interface EventSource {
  next(): Promise<PipelineEvent | undefined>;
  /** One chunk has been written: the reader may produce another. */
  granted(): void;
  close(): Promise<void>;
}

function inThreadSource(opts: PipelineOptions, stdin: NodeJS.ReadableStream): EventSource {
  const gen = runPipeline(opts, stdin);
  let reading = false;
  return {
    next: async () => {
      reading = true;
      try {
        const r = await gen.next();
        return r.done ? undefined : r.value;
      } finally {
        reading = false;
      }
    },
    granted() {},
    // A run stopped by a signal may leave a read pending (a silent pipe): do not wait for it.
    close: async () => {
      if (reading) void gen.return(undefined).catch(() => undefined);
      else await gen.return(undefined);
    },
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

/** The read stage's options for a run of `opts` that skips the first `skipRecords` records. */
export function pipelineOptions(opts: ImportOptions, skipRecords: number, today: Date, hashInput: boolean, checkDuplicates: boolean, verifyPrefix?: InputPrefix): PipelineOptions {
  return {
    verifyPrefix,
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
    transform: opts.transform,
    maxRecordChars: opts.maxRecordChars,
    maxGzipRatio: opts.maxGzipRatio,
  };
}

export function openReader(deps: ImportDeps, p: PipelineOptions): EventSource {
  const file = deps.worker === false || process.env.COMPANYCTL_IMPORT_WORKER === '0' ? undefined : workerFile();
  return file ? workerSource(file, p, deps.stdin) : inThreadSource(p, deps.stdin);
}
