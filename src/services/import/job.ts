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
import { claim, jobOwnerAlive, lockedError } from './lock.js';
import { formatFromName, type InputFormat } from './formats.js';
import type { InputField } from './mapping.js';
import { describeImportKey, type ImportKey } from './rows.js';
import { checkRejectsPath } from './rejects.js';
import { fileChecksum } from './source.js';
import { silentProgress, type ImportDeps, type ImportOptions, type ImportProgress, type ImportSummary, type MaxErrors } from './types.js';

const jobs = () => import('../../infra/db/import-jobs.js');

function jobIdentity(checksum: string | null, opts: ImportOptions): string {
  if (!checksum) return `stdin:${randomUUID()}`;
  const spec = { checksum, key: describeImportKey(opts.key), format: opts.format ?? null, encoding: opts.encoding ?? null, mapping: [...opts.mapping].sort() };
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex');
}

/** Start an import, or resume the unfinished job of the same input and options. */
export async function runImport(deps: ImportDeps, opts: ImportOptions, progress: ImportProgress = silentProgress, signal?: AbortSignal): Promise<ImportSummary> {
  const source = opts.source === '-' ? '-' : resolve(opts.source);
  const rejectsFile = opts.rejectsFile ? resolve(opts.rejectsFile) : undefined;
  if (opts.dryRun) {
    if (rejectsFile) checkRejectsPath(rejectsFile, { force: opts.force, input: source });
    return dryRun(deps, { ...opts, source }, progress);
  }
  const checksum = source === '-' ? null : await fileChecksum(source).catch((e: NodeJS.ErrnoException) => {
    throw new CompanyctlError('COMPANYCTL_USAGE', `cannot read ${opts.source}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, { field: 'file' });
  });
  const identity = jobIdentity(checksum, opts);
  const store = await deps.store();
  const j = await jobs();
  const owner = newLockOwner();
  const now = deps.now();
  let job: ImportJob | undefined = await j.latestJob(store.read, identity);
  let resumed = false;
  if (job && (job.state === 'running' || job.state === 'failed' || job.state === 'cancelled')) {
    if (job.state === 'running' && jobOwnerAlive(job, now)) throw lockedError(job);
    if (rejectsFile) checkRejectsPath(rejectsFile, { force: opts.force, input: source, ownedByJob: job.rejectsFile ?? undefined });
    await claim(store, job, owner, now);
    resumed = true;
  } else {
    if (rejectsFile) checkRejectsPath(rejectsFile, { force: opts.force, input: source });
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
  if (job.state === 'running' && jobOwnerAlive(job, now)) throw lockedError(job);
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
  const owner = newLockOwner();
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

