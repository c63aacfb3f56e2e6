// companyctl token revoke <name|id>: the token stops working at once on this host.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('revoke')
    .description('revoke an API token')
    .argument('<name>', 'token name (or id)')
    .addHelpText('after', '\nExample:\n  companyctl token revoke nightly')
    .action((name: string, _opts: unknown, c: Command) => run(c, (ctx) => revokeRun(ctx, name)));
}

export async function revokeRun(ctx: Context, name: string): Promise<number> {
  const { revokeToken } = await import('../../src/services/auth.js');
  const { authDeps } = await import('../../src/context.js');
  const { writeJson } = await import('../../src/io/output.js');
  const t = await revokeToken(authDeps(ctx), name);
  if (ctx.globals.json) writeJson(ctx, { name: t.name, state: t.state, revokedAt: t.revokedAt });
  else ctx.notice(`revoked token ${t.name}`);
  return 0;
}
