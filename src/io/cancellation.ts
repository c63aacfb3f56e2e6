// Ctrl-C (or SIGTERM) for long runs: the first asks the run to stop at a safe point (it stays
// resumable), the second quits at once with exit 130.
import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';

export async function withCancellation<T>(ctx: Context, stopping: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSignal = () => {
    if (ac.signal.aborted) process.exit(ExitCode.cancelled);
    // On a terminal the notice clears the line first: a progress bar may be drawn there.
    ctx.notice(`${ctx.io.stderrIsTTY ? '\r\x1b[K' : ''}${stopping} (press Ctrl-C again to quit at once)`);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(ac.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * For a long-running service (`companyctl worker`): the first SIGTERM/SIGINT aborts `stop` (finish
 * what is in flight), `graceMs` later `deadline` aborts (give up on it); a second signal quits at once.
 */
export async function withGracefulStop<T>(ctx: Context, graceMs: number, fn: (stop: AbortSignal, deadline: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const deadline = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(ExitCode.cancelled);
    stop.abort();
    timer = setTimeout(() => deadline.abort(), graceMs);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(stop.signal, deadline.signal);
  } finally {
    if (timer) clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
