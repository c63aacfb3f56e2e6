// A queued enrichment (`enrich --queue`), run by a worker with its own host's API settings and
// key: the run resumes where a dead worker's run stopped (the enrich run's own resume), and ends
// with the exit code the command would have had (0, 3 some failed, 1 all failed).
import { isCompanyctlError } from '../../errors.js';
import type { QueuedJob } from '../../infra/db/job-queue.js';
import type { EnrichProgress, EnrichSummary } from '../enrich.js';
import { JobNotReady, type JobRunner } from './jobs.js';

/** `run` is the enrich command's own run, given the job's options, a progress port and the stop signal. */
export function enrichJobRunner(run: (job: QueuedJob, progress: EnrichProgress, signal: AbortSignal) => Promise<EnrichSummary | undefined>): JobRunner {
  return async (job, ctl) => {
    let ref: Promise<void> | undefined;
    const progress: EnrichProgress = { start: (info) => void (ref = ctl.setRef(info.runId).catch(() => undefined)), update() {}, stop() {} };
    try {
      const s = (await run(job, progress, ctl.signal))!;
      await ref;
      const succeeded = s.enriched + s.unchanged + s.notFound + s.skipped;
      if (s.failed > 0 && succeeded === 0) return { state: 'failed', exitCode: 1, result: { ...s }, error: `every company of enrich run ${s.runId} failed (${s.failed})` };
      return { state: s.failed > 0 ? 'completed_with_failures' : 'completed', exitCode: s.failed > 0 ? 3 : 0, result: { ...s }, error: null };
    } catch (e) {
      await ref;
      if (isCompanyctlError(e) && e.code === 'COMPANYCTL_ENRICH_LOCKED') throw new JobNotReady(e.message);
      throw e;
    }
  };
}
