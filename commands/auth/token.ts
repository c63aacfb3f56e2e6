// companyctl auth token: print the raw token of the current login (only when asked).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('token')
    .description('print the current token (it grants your access: handle it like a password)')
    .addHelpText('after', '\nExample:\n  COMPANYCTL_TOKEN=$(companyctl auth token) some-script')
    .action((_opts: unknown, c: Command) => run(c, (ctx) => tokenRun(ctx)));
}

export async function tokenRun(ctx: Context): Promise<number> {
  const { credentialSlot, findToken } = await import('../../src/infra/credentials.js');
  const found = await findToken(ctx.env, credentialSlot(ctx.paths.configDir, ctx.profile(), ctx.storeLocation().key));
  // The runner has already verified this token; found is the same one.
  if (ctx.globals.json) (await import('../../src/io/output.js')).writeJson(ctx, { token: found!.token });
  else ctx.io.stdout.write(`${found!.token}\n`);
  return 0;
}
