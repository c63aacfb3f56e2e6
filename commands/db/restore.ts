// companyctl db restore <file>: put a backup in place of the SQLite store (refusing to overwrite
// a live store without --force, and a backup newer than this code).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface RestoreOptions {
  force?: boolean;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('restore')
    .description('replace the SQLite store with a backup made by "db backup" (checked first)')
    .argument('<file>', 'the backup file')
    .option('--force', 'overwrite an existing store (an admin of that store must be logged in)')
    .addHelpText('after', '\nExamples:\n  companyctl db restore /backups/companyctl-2026-11-30.db           # onto a machine without a store\n  companyctl db restore ./before-upgrade.db --force')
    .action((file: string, opts: RestoreOptions, c: Command) => run(c, (ctx) => restoreRun(ctx, file, opts)));
}

export async function restoreRun(ctx: Context, file: string, opts: RestoreOptions): Promise<number> {
  const { resolve } = await import('node:path');
  const { CompanyctlError } = await import('../../src/errors.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const { inspectStore } = await import('../../src/infra/db/store.js');
  const loc = ctx.storeLocation();
  if (loc.dialect !== 'sqlite') {
    throw new CompanyctlError('COMPANYCTL_USAGE', 'db restore writes a SQLite store; this store is on PostgreSQL', {
      hint: 'restore PostgreSQL with pg_restore, or move a SQLite backup there with "db copy --to postgresql://..."',
    });
  }
  const { checkSqliteStore, restoreSqlite } = await import('../../src/infra/db/backup.js');
  const path = resolve(file);
  if (path === loc.target) throw new CompanyctlError('COMPANYCTL_USAGE', 'the backup is the store itself', { field: 'file' });
  const check = await checkSqliteStore(path);
  if (check.schema.unknown.length > 0) {
    throw new CompanyctlError('COMPANYCTL_SCHEMA_TOO_NEW', `${path} was made by a newer companyctl (migrations ${check.schema.unknown.join(', ')})`, { hint: 'upgrade companyctl first' });
  }
  const live = (await inspectStore(loc)).initialised;
  if (live) {
    if (!opts.force) {
      throw new CompanyctlError('COMPANYCTL_STORE_EXISTS', `a store exists at ${loc.display}; restoring would replace it`, { hint: 'back it up first ("companyctl db backup"), then add --force' });
    }
    // Replacing a live store is an admin's act on that store.
    const { identify } = await import('../../src/context.js');
    const { requireRole } = await import('../../src/services/auth.js');
    requireRole(await identify(ctx), 'admin', 'companyctl db restore --force');
    await ctx.close();
  }
  await restoreSqlite(path, loc.target);
  // Cached reads and keys belong to the store that was replaced.
  ctx.cache()?.clear();
  const { recordSecurityEvent } = await import('../../src/services/security-events.js');
  const pending = check.schema.pending;
  if (pending.length === 0) {
    const { rebuildLocalLog } = await import('../../src/services/audit.js');
    const { openAuditLog } = await import('../../src/services/events.js');
    const { eventsEnv } = await import('../../src/context.js');
    const store = await ctx.store();
    const moved = await rebuildLocalLog(store, await openAuditLog(eventsEnv(ctx)), ctx.now());
    if (moved) ctx.notice(`this host's audit log from before the restore was moved to ${moved}`);
    await recordSecurityEvent(store, { type: 'db.restored', actor: ctx.actor(), target: `file:${path}`, data: { file: path, replaced: live }, now: ctx.now() });
  }
  await writeRecord(ctx, { store: loc.display, from: path, replaced: live, companies: check.companies, auditEntries: check.auditEntries, pendingMigrations: pending.join(', ') || '-' });
  ctx.notice(pending.length ? `restored; the backup is older than this companyctl: run "companyctl db migrate"` : `restored ${loc.display} from ${path}`);
  return 0;
}
