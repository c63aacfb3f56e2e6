// The worker command's ports: its log lines (JSON on stderr without a terminal, short lines on
// one) and the job runners it is given, built from this run's context.
import type { Context } from '../context.js';
import type { JobKind } from '../infra/db/job-queue.js';
import type { WorkerLogEntry } from '../services/worker/index.js';
import type { JobRunner } from '../services/worker/jobs.js';

export function workerLog(ctx: Context, onError: (e: WorkerLogEntry) => void): (e: WorkerLogEntry) => void {
  const tty = ctx.io.stderrIsTTY;
  return (e) => {
    if (e.level === 'error') onError(e);
    if (ctx.globals.quiet && e.level === 'info') return;
    const time = new Date();
    if (!tty) {
      ctx.io.stderr.write(`${JSON.stringify({ time: time.toISOString(), ...e })}\n`);
      return;
    }
    const { level, msg, worker: _w, ...rest } = e;
    const extra = Object.entries(rest)
      .filter(([, v]) => v !== undefined && (typeof v !== 'object' || v === null))
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ');
    ctx.io.stderr.write(`${time.toISOString().slice(11, 19)} ${level === 'info' ? '' : `${level}: `}${msg}${extra ? `  ${extra}` : ''}\n`);
  };
}

/** What this worker can run: queued imports and enrichments, with this host's settings. */
export async function jobRunners(_ctx: Context): Promise<Partial<Record<JobKind, JobRunner>>> {
  return {};
}
