// The import's public types: what the command (or a queued job) gives a run, the ports it
// reports through, and the summary it returns.
import type { FileCache } from '../../infra/cache.js';
import type { JobState } from '../../infra/db/import-jobs.js';
import type { Store } from '../../infra/db/store.js';
import type { InputFormat } from './formats.js';
import type { InputField } from './mapping.js';
import type { ImportKey, PipelineHeader } from './rows.js';

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
  /** Smallest input (bytes) loaded as a bulk load; default BULK_BYTES. */
  bulkBytes?: number;
  /** Whether a lock owner (host:pid:…) still runs, when the caller knows (a worker knows its peers); undefined: decide as usual. */
  ownerAlive?: (owner: string) => boolean | undefined;
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
  /** Replace an existing --rejects file (--force). */
  force?: boolean;
  /** --max-record-size in characters (default 1 MiB). */
  maxRecordChars?: number;
  /** --max-gzip-ratio (default 100; 0: no limit). */
  maxGzipRatio?: number;
  /** --wait: how long to wait for other imports into the same SQLite store (default 1 hour). */
  waitMs?: number;
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

