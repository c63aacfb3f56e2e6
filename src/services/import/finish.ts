// The finish stage: the job's final state and counts, one summary event in the outbox (in the
// same transaction), the file cache dropped when companies changed, and the run's outcome as
// a summary or a typed error (failed, cancelled, too many rejects).
import { CompanyctlError, diskFullError, isCompanyctlError, type ErrorCode } from '../../errors.js';
import type { Checkpoint, ImportJob, JobState } from '../../infra/db/import-jobs.js';
import type { Store } from '../../infra/db/store.js';
import type { Counts } from './execute.js';
import type { RejectsFile } from './rejects.js';
import { describeImportKey, type PipelineHeader } from './rows.js';
import type { ImportDeps, ImportOptions, ImportSummary } from './types.js';

/** What a run knows about itself, shared by the chunk loop and the finish. */
export interface RunState {
  deps: ImportDeps;
  store: Store;
  job: ImportJob;
  owner: string;
  opts: ImportOptions;
  /** Date.now() at the start of this run. */
  started: number;
  counts: Counts;
  resumedFrom: number;
  header?: PipelineHeader;
  rejects?: RejectsFile;
  /** sha256 of stdin, known once it is read to the end. */
  checksum?: string;
}

const KEEP_CODE = new Set<ErrorCode>(['COMPANYCTL_FILE_EXISTS', 'COMPANYCTL_USAGE', 'COMPANYCTL_DISK_FULL', 'COMPANYCTL_IMPORT_INPUT_CHANGED']);

export interface StopReason {
  state: JobState;
  code: ErrorCode;
  message: string;
}

function checkpoint(run: RunState): Checkpoint {
  return {
    ...run.counts,
    rejectsBytes: run.rejects?.bytes ?? run.job.rejectsBytes,
    elapsedMs: run.job.elapsedMs + (Date.now() - run.started),
    checksum: run.checksum ?? null,
  };
}

function summary(run: RunState, state: JobState, eventId: number | null): ImportSummary {
  const { job, counts, header, resumedFrom } = run;
  const seconds = (Date.now() - run.started) / 1000;
  const rowsThisRun = counts.rowsDone - resumedFrom;
  return {
    jobId: job.id,
    state,
    file: run.opts.source,
    format: header?.format ?? job.format,
    encoding: header?.encoding ?? job.encoding,
    key: describeImportKey(run.opts.key),
    rows: counts.rowsDone,
    inserted: counts.inserted,
    updated: counts.updated,
    unchanged: counts.unchanged,
    rejected: counts.rejected,
    seconds: Math.round(seconds * 1000) / 1000,
    rowsPerSecond: seconds > 0 ? Math.round(rowsThisRun / seconds) : rowsThisRun,
    rejectsFile: counts.rejected > 0 ? (run.rejects?.path ?? job.rejectsFile) : null,
    unknownColumns: header?.unknown ?? [],
    ignoredColumns: header?.ignored ?? [],
    resumedFrom,
    eventId,
  };
}

/** Close the job in `state` and announce it with one outbox event. */
async function finish(run: RunState, state: JobState, error: string | null): Promise<ImportSummary> {
  const j = await import('../../infra/db/import-jobs.js');
  const { insertOutboxEvent } = await import('../../infra/db/company-write.js');
  const now = run.deps.now().toISOString();
  const s0 = summary(run, state, null);
  const eventId = await run.store.transaction(async (tx) => {
    await j.finishJob(tx, run.job.id, run.owner, state, checkpoint(run), error, now);
    // No `error: null` on a run that ended well: the audit line would read "failed: null".
    return insertOutboxEvent(tx, { type: `import.${state}`, companyId: null, actor: run.deps.actor, payload: { ...s0, ...(error === null ? {} : { error }) }, createdAt: now });
  });
  return { ...s0, eventId };
}

/** The end of a run: its summary, or the typed error that stopped it (after closing the job). */
export async function endRun(run: RunState, failure: unknown, stopReason: StopReason | undefined): Promise<ImportSummary> {
  const { job, counts, store, deps } = run;
  if (counts.inserted + counts.updated > 0) deps.cache?.clear();
  if (failure) {
    if (isCompanyctlError(failure) && failure.code === 'COMPANYCTL_IMPORT_LOCKED') throw failure;
    const message = isCompanyctlError(failure) ? failure.message : String((failure as Error)?.message ?? failure);
    const { insertOutboxEvent } = await import('../../infra/db/company-write.js');
    // Before the header was read (an empty file, a bad header) no chunk ran: nothing to record as one.
    const inChunk = run.header !== undefined;
    // The failed chunk rolled back; its failure is recorded outside that transaction.
    if (inChunk) await store
      .transaction(async (tx) => {
        await insertOutboxEvent(tx, {
          type: 'import.chunk_failed',
          companyId: null,
          actor: deps.actor,
          payload: { jobId: job.id, file: run.opts.source, afterRow: counts.rowsDone, error: message },
          createdAt: deps.now().toISOString(),
        });
      })
      .catch(() => undefined);
    const s = await finish(run, 'failed', message).catch(() => summary(run, 'failed', null));
    // Whatever stopped it (unreadable input, the store), the import failed: exit 1, with the cause's code in data.
    const known = isCompanyctlError(failure) ? failure : undefined;
    // A full disk or a refused file keeps its own code (and exit status); anything else is IMPORT_FAILED.
    const code = diskFullError(failure)?.code ?? (known && KEEP_CODE.has(known.code) ? known.code : 'COMPANYCTL_IMPORT_FAILED');
    throw new CompanyctlError(code, `import job ${job.id} failed after ${counts.rowsDone} rows: ${message}`, {
      hint: inChunk
        ? `${known?.hint ? `${known.hint}; then ` : ''}resume with "companyctl import resume ${job.id}" (committed rows stay)`
        : `${known?.hint ? `${known.hint}; then ` : ''}run the import again (no row was read; job ${job.id} stays as failed)`,
      field: known?.field,
      data: { cause: known?.code ?? 'COMPANYCTL_INTERNAL', summary: s },
      cause: failure,
    });
  }
  if (stopReason) {
    const s = await finish(run, stopReason.state, stopReason.message);
    throw new CompanyctlError(stopReason.code, `import job ${job.id} stopped after ${counts.rowsDone} rows: ${stopReason.message}`, {
      hint: stopReason.state === 'cancelled' ? `resume with "companyctl import resume ${job.id}"` : `see the rejects in ${run.rejects?.path}; committed rows stay`,
      data: { summary: s },
    });
  }
  return finish(run, counts.rejected > 0 ? 'completed_with_rejects' : 'completed', null);
}
