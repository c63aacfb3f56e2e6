// companyctl init: create the store (SQLite by default) and apply the schema.
import type { Command } from 'commander';
import type { Runner } from '../src/cli.js';
import type { Context } from '../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('init')
    .description('create the store and apply its schema')
    .addHelpText('after', '\nExamples:\n  companyctl init\n  companyctl init --db postgresql://companyctl@db.internal/companyctl')
    .action((_opts: unknown, c: Command) => run(c, (ctx) => initRun(ctx)));
}

export async function initRun(ctx: Context): Promise<number> {
  const { inspectStore, migrateStore } = await import('../src/infra/db/store.js');
  const { CompanyctlError } = await import('../src/errors.js');
  const { writeJson } = await import('../src/io/output.js');
  const loc = ctx.storeLocation();
  const before = await inspectStore(loc);
  if (before.initialised) {
    throw new CompanyctlError('COMPANYCTL_ALREADY_INITIALISED', `a companyctl store already exists at ${loc.display}`, {
      hint: before.pending.length > 0 ? 'run "companyctl db migrate" to upgrade it' : 'nothing to do; "companyctl db status" shows it',
    });
  }
  const { applied, storeId } = await migrateStore(loc);
  if (ctx.globals.json) writeJson(ctx, { store: loc.display, dialect: loc.dialect, storeId, migrationsApplied: applied });
  else ctx.notice(`created the ${loc.dialect} store at ${loc.display} (id ${storeId}; migrations: ${applied.join(', ')})`);
  return 0;
}
