// The job stage: an import run is a job row in the store. A run finds the unfinished job of
// the same input and options (resume) or creates one, takes its run lock, and hands it to the
// chunk loop (execute.ts). `import resume`, `import list` and `import show` start here too.
import { createHash, randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { CompanyctlError } from '../../errors.js';
import type { ImportJob, JobState } from '../../infra/db/import-jobs.js';
import { newLockOwner } from '../../infra/run-lock.js';
import { dryRun } from './dry-run.js';
import { execute } from './execute.js';
import { claim, DEFAULT_WAIT_MS, ImportTurn, jobOwnerAlive, lockedError, reapDeadJobs } from './lock.js';
import { formatFromName, type InputFormat } from './formats.js';
import type { InputField } from './mapping.js';
import { describeImportKey, type ImportKey } from './rows.js';
import { checkRejectsPath } from './rejects.js';
import { fileChecksum, isRegularFile, isStreamedJob } from './source.js';
import { silentProgress, type ImportDeps, type ImportOptions, type ImportProgress, type ImportSummary, type MaxErrors } from './types.js';

const jobs = () => import('../../infra/db/import-jobs.js');

/**
 * What makes "the same import": the file (its path, and its bytes by checksum), its format and
 * the options. A byte-identical copy under another name is another job. A streamed input has
 * no checksum up front: each run is a job of its own (resume it by id).
 */
function jobIdentity(source: string, checksum: string | null, opts: ImportOptions): string {
  if (!checksum) return `stdin:${randomUUID()}`;
  const spec = {
    source,
    checksum,
    key: describeImportKey(opts.key),
    format: opts.format ?? formatFromName(source) ?? null,
    encoding: opts.encoding ?? null,
    mapping: [...opts.mapping].sort(),
  };
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex');
}


/** Start an import, or resume the unfinished job of the same input and options. */
export async function runImport(deps: ImportDeps, opts: ImportOptions, progress: ImportProgress = silentProgress, signal?: AbortSignal): Promise<ImportSummary> {
  const source = opts.source === '-' ? '-' : resolve(opts.source);
  const rejectsFile = opts.rejectsFile ? resolve(opts.rejectsFile) : undefined;
  if (opts.dryRun) {
    if (rejectsFile) checkRejectsPath(rejectsFile, { force: opts.force, input: source });
    return dryRun(deps, { ...opts, source }, progress, signal);
  }
  // A pipe or /dev/fd/N can be read once only: it is hashed while it streams, as stdin is.
  const streamed = !isRegularFile(source);
  const checksum = streamed ? null : await fileChecksum(source).catch((e: NodeJS.ErrnoException) => {
    throw new CompanyctlError('COMPANYCTL_USAGE', `cannot read ${opts.source}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, { field: 'file' });
  });
  const identity = jobIdentity(source, checksum, opts);
  const store = await deps.store();
  const j = await jobs();
  // The same job already running is refused at once (overlapping cron runs); other imports are waited for.
  const current = await j.latestJob(store.read, identity);
  if (current?.state === 'running' && jobOwnerAlive(current, deps.now(), deps.ownerAlive)) throw lockedError(current);
  const turn = new ImportTurn(store, { waitMs: opts.waitMs ?? DEFAULT_WAIT_MS, notice: (m) => progress.notice(m), signal, now: deps.now });
  await turn.wait();
  await reapDeadJobs(store, deps.now());
  const owner = newLockOwner();
  const now = deps.now();
  let job: ImportJob | undefined = await j.latestJob(store.read, identity);
  let resumed = false;
  if (job && (job.state === 'running' || job.state === 'failed' || job.state === 'cancelled')) {
    if (job.state === 'running' && jobOwnerAlive(job, now, deps.ownerAlive)) throw lockedError(job);
    if (rejectsFile) checkRejectsPath(rejectsFile, { force: opts.force, input: source, ownedByJob: job.rejectsFile ?? undefined });
    const claimed = job;
    await turn.write(() => claim(store, claimed, owner, now));
    resumed = true;
  } else {
    if (rejectsFile) checkRejectsPath(rejectsFile, { force: opts.force, input: source });
    const id = await turn
      .write(() => store.transaction((tx) =>
        j.createJob(tx, {
          source,
          identity,
          checksum,
          format: opts.format ?? formatFromName(source) ?? 'auto',
          encoding: opts.encoding ?? 'auto',
          options: { ...jobOptions(opts), streamed },
          rejectsFile: opts.rejectsFile ? resolve(opts.rejectsFile) : '',
          lockOwner: owner,
          actor: deps.actor,
          now: now.toISOString(),
        }),
      ))
      .catch(async (e) => {
        // Another run created the same job a moment ago (the unique running index).
        const other = await j.latestJob(store.read, identity);
        if (other?.state === 'running') throw lockedError(other);
        throw e;
      });
    job = (await j.getJob(store.read, id))!;
  }
  // Two runs that started together: the older job writes first.
  await turn.wait(job.id);
  return execute(deps, store, job, owner, { ...opts, source }, progress, signal, resumed);
}

/** `import resume <job>`: continue a job from its checkpoint, with the options it started with. */
export async function resumeImport(
  deps: ImportDeps,
  jobId: number,
  input: string | undefined,
  progress: ImportProgress = silentProgress,
  signal?: AbortSignal,
  waitMs?: number,
): Promise<ImportSummary> {
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
  if (job.state === 'running' && jobOwnerAlive(job, now, deps.ownerAlive)) throw lockedError(job);
  const source = input !== undefined ? (input === '-' ? '-' : resolve(input)) : job.source;
  const streamedJob = isStreamedJob(job);
  if (streamedJob && input === undefined) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `import job ${jobId} read ${job.source === '-' ? 'stdin' : `a stream (${job.source})`}: give the same input again with --input`, {
      field: '--input',
      hint: `e.g. companyctl import resume ${jobId} --input - < the-same-file`,
    });
  }
  if (streamedJob && job.rowsDone > 0 && !job.inputPrefix) {
    throw new CompanyctlError('COMPANYCTL_IMPORT_NOT_RESUMABLE', `import job ${jobId} read a stream and kept no proof of it; it cannot be resumed safely`, {
      hint: 'import the input again as a new job (rows it committed are updated, not duplicated)',
    });
  }
  if (!streamedJob) {
    if (!isRegularFile(source)) {
      throw new CompanyctlError('COMPANYCTL_USAGE', `import job ${jobId} read a file: resume it with a file, not a stream`, { field: '--input' });
    }
    const sum = await fileChecksum(source).catch(() => null);
    if (job.checksum && sum !== job.checksum) {
      throw new CompanyctlError('COMPANYCTL_IMPORT_INPUT_CHANGED', `${source} is not the input import job ${jobId} started with (its checksum differs)`, {
        hint: 'resume with the original file, or start a new import of the new file',
      });
    }
  }
  const owner = newLockOwner();
  const turn = new ImportTurn(store, { waitMs: waitMs ?? DEFAULT_WAIT_MS, notice: (m) => progress.notice(m), signal, now: deps.now });
  await turn.wait(job.id);
  await turn.write(() => claim(store, job, owner, now));
  // jobOptions() stores absent options as null.
  const o = job.options as {
    key: string;
    chunkSize: number;
    format: InputFormat | null;
    encoding: string | null;
    mapping: [string, InputField | null][];
    maxErrors: MaxErrors | null;
    maxRecordChars?: number | null;
    maxGzipRatio?: number | null;
  };
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
    maxRecordChars: o.maxRecordChars ?? undefined,
    maxGzipRatio: o.maxGzipRatio ?? undefined,
  };
  return execute(deps, store, (await j.getJob(store.read, jobId))!, owner, opts, progress, signal, true);
}

function jobOptions(opts: ImportOptions): Record<string, unknown> {
  return {
    key: describeImportKey(opts.key),
    chunkSize: opts.chunkSize,
    format: opts.format ?? null,
    encoding: opts.encoding ?? null,
    mapping: opts.mapping,
    maxErrors: opts.maxErrors ?? null,
    maxRecordChars: opts.maxRecordChars ?? null,
    maxGzipRatio: opts.maxGzipRatio ?? null,
  };
}

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

