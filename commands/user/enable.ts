// companyctl user enable <name>: let a disabled user log in again.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('enable')
    .description('enable a disabled user')
    .argument('<username>', 'user name')
    .addHelpText('after', '\nExample:\n  companyctl user enable bob')
    .action((username: string, _opts: unknown, c: Command) => run(c, (ctx) => enableRun(ctx, username)));
}

export async function enableRun(ctx: Context, username: string): Promise<number> {
  const { setUserDisabled } = await import('../../src/services/auth.js');
  const { authDeps } = await import('../../src/context.js');
  const { writeJson } = await import('../../src/io/output.js');
  const r = await setUserDisabled(authDeps(ctx), username, false);
  if (ctx.globals.json) writeJson(ctx, { username, disabled: false, ...r });
  else ctx.notice(`enabled ${username}${r.revokedSessions ? `; revoked ${r.revokedSessions} sessions` : ''}`);
  return 0;
}
