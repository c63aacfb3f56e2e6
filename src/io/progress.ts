// Import progress on stderr: a cli-progress bar (rows, rows/s, rejects, ETA) when stderr is a
// terminal; nothing but notices in cron and CI. stdout never sees any of it.
import type { Context } from '../context.js';
import type { ImportProgress } from '../services/import/index.js';
import { escapeControl } from './escape.js';

export async function importProgress(ctx: Context): Promise<ImportProgress> {
  const notice = (m: string) => ctx.notice(m);
  if (!ctx.io.stderrIsTTY || ctx.globals.quiet) {
    return { start() {}, update() {}, notice, stop() {} };
  }
  const { default: cliProgress } = await import('cli-progress');
  let bar: InstanceType<typeof cliProgress.SingleBar> | undefined;
  let startedAt = 0;
  let resumedFrom = 0;
  let total: number | undefined;
  const payload = (records: number, rejected: number) => {
    const secs = (Date.now() - startedAt) / 1000;
    return {
      rows: records.toLocaleString('en-US'),
      rate: secs > 0 ? Math.round((records - resumedFrom) / secs).toLocaleString('en-US') : '0',
      rejected: rejected.toLocaleString('en-US'),
    };
  };
  return {
    start(info) {
      startedAt = Date.now();
      resumedFrom = info.resumedFrom;
      total = info.header.total;
      const withTotal = total !== undefined && total > 0;
      bar = new cliProgress.SingleBar(
        {
          stream: ctx.io.stderr as NodeJS.WriteStream,
          format: withTotal
            ? '{bar} {percentage}% | {rows} rows | {rate} rows/s | {rejected} rejected | ETA {eta_formatted}'
            : '{rows} rows | {rate} rows/s | {rejected} rejected',
          hideCursor: true,
          clearOnComplete: false,
          noTTYOutput: true,
          etaBuffer: 50,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(withTotal ? total! : 1, 0, payload(resumedFrom, 0));
    },
    update(s) {
      bar?.update(total ? Math.min(s.bytes, total) : 0, payload(s.records, s.rejected));
    },
    notice(m) {
      // Above the bar, so the bar stays the last line.
      if (bar && !ctx.globals.quiet) ctx.io.stderr.write(`\r\x1b[K${escapeControl(m)}\n`);
      else notice(m);
    },
    stop() {
      // No jump to 100%: a cancelled or failed run stops where it got to (a finished one is there already).
      bar?.stop();
      bar = undefined;
    },
  };
}
