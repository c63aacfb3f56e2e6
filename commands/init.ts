// companyctl init: create the store (SQLite by default) and apply the schema.
import type { Command } from 'commander';
import type { Runner } from '../src/cli.js';
import type { Context } from '../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('init')
    .description('create the store, apply its schema, and create the first admin')
    .option('--admin <username>', 'user name of the first admin', 'admin')
    .option('--password-stdin', "read the admin's password from stdin (asked twice on a terminal otherwise)")
    .addHelpText(
      'after',
      '\nExamples:\n  companyctl init\n  printf %s "$ADMIN_PW" | companyctl init --admin alice --password-stdin --db postgresql://companyctl@db.internal/companyctl',
    )
    .action((opts: InitOptions, c: Command) => run(c, (ctx) => initRun(ctx, opts)));
}

export interface InitOptions {
  admin: string;
  passwordStdin?: boolean;
}

export async function initRun(ctx: Context, opts: InitOptions): Promise<number> {
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
  const { addUser, checkPassword, checkUsername, countUsers, passwordRules } = await import('../src/services/auth.js');
  const { readPassword } = await import('../src/io/password.js');
  const { authDeps } = await import('../src/context.js');
  // Ask before creating anything, so a bad password leaves no half-made store behind.
  const admin = checkUsername(opts.admin);
  const password = await readPassword(ctx, { fromStdin: opts.passwordStdin, confirm: true, prompt: `Password for the admin ${admin}`, rules: passwordRules(admin) });
  checkPassword(password, admin);
  const { applied, storeId } = await migrateStore(loc);
  // A store made anew at the same place must not meet the old one's cached keys or sessions.
  ctx.cache()?.clear();
  if ((await countUsers(await ctx.store())) === 0) await addUser(authDeps(ctx), admin, password, 'admin');
  if (ctx.globals.json) writeJson(ctx, { store: loc.display, dialect: loc.dialect, storeId, migrationsApplied: applied, admin });
  else ctx.notice(`created the ${loc.dialect} store at ${loc.display} (id ${storeId}) with the admin ${admin}; next: companyctl login -u ${admin}`);
  return 0;
}
