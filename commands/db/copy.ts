// companyctl db copy --to <target>: move the whole store into an empty SQLite file or
// PostgreSQL database (either direction), then compare every table's count and checksum.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface CopyOptions {
  to: string;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('copy')
    .description('copy the whole store (every table, ids, users, keys, events, the audit chain) into an empty SQLite file or PostgreSQL database')
    .requiredOption('--to <file|url>', 'the target: a new SQLite file, or a postgresql:// URL of an empty database')
    .addHelpText(
      'after',
      `
Examples:
  companyctl db copy --to postgresql://companyctl@db.internal/companyctl   # outgrow one machine
  companyctl --db postgresql://companyctl@db.internal/companyctl db copy --to ./laptop.db
The copy compares each table's row count and checksum with the source and exits 1 on a difference.`,
    )
    .action((opts: CopyOptions, c: Command) => run(c, (ctx) => copyRun(ctx, opts)));
}

export async function copyRun(ctx: Context, opts: CopyOptions): Promise<number> {
  const { resolveStoreLocation } = await import('../../src/infra/db/location.js');
  const { copyStore } = await import('../../src/services/db-copy.js');
  const { recordSecurityEvent } = await import('../../src/services/security-events.js');
  const { writeJson, writeRecords } = await import('../../src/io/output.js');
  const { CompanyctlError } = await import('../../src/errors.js');
  const source = ctx.storeLocation();
  const target = resolveStoreLocation(opts.to, opts.to);
  ctx.notice(`copying ${source.display} to ${target.display}`);
  const started = Date.now();
  const at = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  const report = await copyStore(source, target, {
    progress: ctx.globals.verbose ? (t, n) => ctx.notice(`${at()}  ${t}: ${n} rows`) : undefined,
    phase: ctx.globals.verbose ? (p) => ctx.notice(`${at()}  ${p}`) : undefined,
  });
  await recordSecurityEvent(await ctx.store(), {
    type: 'db.copied',
    actor: ctx.actor(),
    target: `store:${target.display}`,
    data: { to: target.display, tables: report.tables.length, rows: report.rows, ok: report.ok },
    now: ctx.now(),
  });
  if (ctx.globals.json) writeJson(ctx, report);
  else await writeRecords(ctx, report.tables, ['table', 'sourceRows', 'targetRows', 'sourceChecksum', 'targetChecksum', 'ok']);
  if (!report.ok) {
    const bad = report.tables.filter((t) => !t.ok).map((t) => t.table);
    throw new CompanyctlError('COMPANYCTL_COPY_MISMATCH', `the copy differs from the source in ${bad.join(', ')}`, { hint: 'do not use the copy; run again with --verbose and report it', data: { tables: bad } });
  }
  ctx.notice(`copied ${report.rows} rows in ${report.tables.length} tables; every count and checksum matches`);
  return 0;
}
