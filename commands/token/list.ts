// companyctl token list: named API tokens (never their values).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('list')
    .description('list API tokens (names, roles, expiry; never the tokens)')
    .option('--all', 'include revoked and expired tokens')
    .addHelpText('after', '\nExample:\n  companyctl token list --json')
    .action((opts: { all?: boolean }, c: Command) => run(c, (ctx) => listRun(ctx, opts)));
}

export async function listRun(ctx: Context, opts: { all?: boolean }): Promise<number> {
  const { listTokens } = await import('../../src/services/auth.js');
  const { authDeps } = await import('../../src/context.js');
  const { writeRecords } = await import('../../src/io/output.js');
  const tokens = await listTokens(authDeps(ctx), opts);
  await writeRecords(ctx, tokens, ['name', 'role', 'state', 'createdBy', 'createdAt', 'expiresAt']);
  return 0;
}
