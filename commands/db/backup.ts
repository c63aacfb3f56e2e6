// companyctl db backup <file>: a consistent online copy of the SQLite store (writers keep
// writing), 0600, checked by opening it.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('backup')
    .description('copy the SQLite store to a new file while it is in use (SQLite backup API), then check the copy')
    .argument('<file>', 'the backup file to create (never overwritten)')
    .addHelpText('after', '\nExamples:\n  companyctl db backup /backups/companyctl-$(date +%F).db\n  companyctl db backup ./before-upgrade.db --json')
    .action((file: string, _opts: unknown, c: Command) => run(c, (ctx) => backupRun(ctx, file)));
}

export async function backupRun(ctx: Context, file: string): Promise<number> {
  const { resolve } = await import('node:path');
  const { statSync } = await import('node:fs');
  const { CompanyctlError } = await import('../../src/errors.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const loc = ctx.storeLocation();
  if (loc.dialect !== 'sqlite') {
    throw new CompanyctlError('COMPANYCTL_USAGE', 'db backup copies a SQLite store; this store is on PostgreSQL', {
      hint: 'use pg_dump, or "companyctl db copy --to <file.db>" for a SQLite copy',
    });
  }
  const { backupSqlite } = await import('../../src/infra/db/backup.js');
  const path = resolve(file);
  const check = await backupSqlite(loc.target, path);
  const { recordSecurityEvent } = await import('../../src/services/security-events.js');
  await recordSecurityEvent(await ctx.store(), { type: 'db.backed_up', actor: ctx.actor(), target: `file:${path}`, data: { file: path, companies: check.companies }, now: ctx.now() });
  await writeRecord(ctx, {
    file: path,
    bytes: statSync(path).size,
    mode: '0600',
    migrations: check.schema.applied.length,
    companies: check.companies,
    auditEntries: check.auditEntries,
  });
  ctx.notice(`backed up ${loc.display} to ${path}; the copy opens and passes SQLite's quick_check`);
  return 0;
}
