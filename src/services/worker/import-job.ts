// A queued import, run by a worker: the staged input is copied out of the store into a private
// file on this host (gzip as staged; the import reads .gz directly), then the import's own
// runImport does the rest, so a job taken over after a crash resumes its import job from the
// last committed chunk (same bytes, same options: the same import job). The file goes at the end.
import { createHash } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CompanyctlError, isCompanyctlError } from '../../errors.js';
import * as q from '../../infra/db/job-queue.js';
import { ensurePrivateDir } from '../../infra/paths.js';
import { runImport, silentProgress, type ImportDeps, type ImportKey, type ImportOptions } from '../import/index.js';
import { JobNotReady, type JobRunner } from './jobs.js';
import type { QueuedImport } from './queue.js';

export function importJobRunner(importDeps: ImportDeps): JobRunner {
  return async (job, ctl) => {
    const o = job.options as unknown as QueuedImport;
    const dir = join(importDeps.stateDir, 'queue', `job-${job.id}`);
    ensurePrivateDir(dir);
    // The staged name is the user's file name: keep only its last part, whatever it holds.
    const file = join(dir, o.inputName.replace(/^.*[\\/]/, '') || 'input.gz');
    try {
      const store = await ctl.store();
      const hash = createHash('sha256');
      try {
        const pieces = async function* () {
          for await (const piece of q.readInput(store.read, job.id)) {
            hash.update(piece);
            yield piece;
          }
        };
        await pipeline(Readable.from(pieces()), createWriteStream(file, { mode: 0o600 }));
      } catch (e) {
        if (isCompanyctlError(e) && e.code === 'COMPANYCTL_STORE_UNAVAILABLE') throw e;
        throw new CompanyctlError('COMPANYCTL_IMPORT_FAILED', `the staged input of job ${job.id} cannot be read: ${(e as Error).message}`);
      }
      if (o.stagedSha256 && hash.digest('hex') !== o.stagedSha256) {
        throw new CompanyctlError('COMPANYCTL_IMPORT_FAILED', `the staged input of job ${job.id} is corrupt: its checksum differs from the one taken when it was queued`, {
          hint: 'queue the file again',
        });
      }
      const [kind, source] = o.key.split(':') as [ImportKey['kind'], string | undefined];
      const opts: ImportOptions = {
        source: file,
        format: (o.format ?? undefined) as ImportOptions['format'],
        encoding: o.encoding ?? undefined,
        mapping: o.mapping,
        key: { kind, source },
        chunkSize: o.chunkSize,
        maxErrors: o.maxErrors ?? undefined,
        rejectsFile: o.rejectsFile ?? undefined,
        transform: o.transform ?? undefined,
        maxRecordChars: o.maxRecordChars ?? undefined,
        maxGzipRatio: o.maxGzipRatio ?? undefined,
      };
      let ref: Promise<void> | undefined;
      const progress = { ...silentProgress, start: (info: { jobId: number | null }) => void (info.jobId !== null && (ref = ctl.setRef(info.jobId).catch(() => undefined))) };
      try {
        const summary = await runImport(
          { ...importDeps, actor: `${job.actor} (queued job ${job.id})`, ownerAlive: ctl.ownerAlive },
          opts,
          progress,
          ctl.signal,
        );
        await ref;
        const state = summary.state === 'completed_with_rejects' ? 'completed_with_rejects' : 'completed';
        return { state, exitCode: summary.rejected > 0 ? 3 : 0, result: { ...summary, file: o.source }, error: null };
      } catch (e) {
        await ref;
        // The same input and options run elsewhere right now (a foreground import, or a twin job): wait for it.
        if (isCompanyctlError(e) && e.code === 'COMPANYCTL_IMPORT_LOCKED') throw new JobNotReady(e.message);
        throw e;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}
