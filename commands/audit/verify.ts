// companyctl audit verify: check the store's chain and this host's log file against it; exit 1
// naming the first bad line.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('verify')
    .description("prove the audit trail is intact: the store's hash chain, and this host's log file line by line against it")
    .addHelpText('after', '\nExamples:\n  companyctl audit verify\n  companyctl audit verify --json || alert-someone')
    .action((_opts: unknown, c: Command) => run(c, (ctx) => verifyRun(ctx)));
}

export async function verifyRun(ctx: Context): Promise<number> {
  const { verifyTrail } = await import('../../src/services/audit.js');
  const { openAuditLog } = await import('../../src/services/events.js');
  const { eventsEnv } = await import('../../src/context.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const { CompanyctlError } = await import('../../src/errors.js');
  const r = await verifyTrail(await ctx.store(), await openAuditLog(eventsEnv(ctx)));
  if (r.ok) {
    await writeRecord(ctx, {
      ok: true,
      entries: r.entries,
      lastSeq: r.head.seq,
      lastHash: r.head.hash,
      log: r.log.id,
      files: r.log.files.length,
      lines: r.log.lines,
    });
    if (r.entries === 0 && r.log.lines === 0) ctx.notice('the audit trail is empty');
    if (!r.log.anchored && r.log.lines > 0) {
      ctx.notice(`warning: this host's log (${r.log.lines} lines) was never anchored in the store: only its keyless chain was checked; the next audited write anchors it`);
    }
    return 0;
  }
  await writeRecord(ctx, { ok: false, where: r.where, file: r.file, line: r.line, seq: r.seq, reason: r.reason, entriesVerified: r.verified });
  throw new CompanyctlError('COMPANYCTL_AUDIT_BROKEN', `the audit trail is broken at ${r.file} line ${r.line}: ${r.reason}`, {
    hint: 'the lines before it are intact; keep a copy of the file and find out who could write to it',
    data: { where: r.where, file: r.file, line: r.line, seq: r.seq },
  });
}
