// companyctl db migrate: apply pending schema migrations (refuses a newer schema).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('migrate')
    .description('apply pending schema migrations')
    .addHelpText('after', '\nExample:\n  companyctl db migrate --json')
    .action((_opts: unknown, c: Command) => run(c, (ctx) => migrateRun(ctx)));
}

export async function migrateRun(ctx: Context): Promise<number> {
  const { inspectStore, migrateStore } = await import('../../src/infra/db/store.js');
  const { CompanyctlError } = await import('../../src/errors.js');
  const { writeJson } = await import('../../src/io/output.js');
  const loc = ctx.storeLocation();
  const status = await inspectStore(loc);
  if (!status.initialised) {
    throw new CompanyctlError('COMPANYCTL_STORE_NOT_INITIALISED', `no companyctl store at ${loc.display}`, { hint: 'run "companyctl init" to create it' });
  }
  const { applied } = await migrateStore(loc);
  const { recordSecurityEvent } = await import('../../src/services/security-events.js');
  await recordSecurityEvent(await ctx.store(), { type: 'db.migrated', actor: ctx.actor(), target: null, data: { applied }, now: ctx.now() });
  if (ctx.globals.json) writeJson(ctx, { store: loc.display, migrationsApplied: applied });
  else ctx.notice(applied.length > 0 ? `applied: ${applied.join(', ')}` : 'the schema is up to date');
  return 0;
}
