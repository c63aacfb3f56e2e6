// companyctl audit verify: recompute the hash chain; exit 1 naming the first broken line.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('verify')
    .description('prove the audit log is intact: recompute every hash; exit 1 at the first broken line')
    .addHelpText('after', '\nExamples:\n  companyctl audit verify\n  companyctl audit verify --json || alert-someone')
    .action((_opts: unknown, c: Command) => run(c, (ctx) => verifyRun(ctx)));
}

export async function verifyRun(ctx: Context): Promise<number> {
  const { verifyAudit } = await import('../../src/services/audit.js');
  const { openAuditLog } = await import('../../src/services/events.js');
  const { eventsEnv } = await import('../../src/context.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const { CompanyctlError } = await import('../../src/errors.js');
  const r = verifyAudit(await openAuditLog(eventsEnv(ctx)));
  if (r.ok) {
    await writeRecord(ctx, { ok: true, files: r.files.length, lines: r.lines, firstSeq: r.firstSeq, lastHash: r.lastHash });
    if (r.lines === 0) ctx.notice('the audit log is empty');
    return 0;
  }
  await writeRecord(ctx, { ok: false, file: r.file, line: r.line, seq: r.seq, reason: r.reason, linesVerified: r.lines });
  throw new CompanyctlError('COMPANYCTL_AUDIT_BROKEN', `the audit log is broken at ${r.file} line ${r.line}: ${r.reason}`, {
    hint: 'the lines before it are intact; keep a copy of the file and find out who could write to it',
    data: { file: r.file, line: r.line, seq: r.seq },
  });
}
