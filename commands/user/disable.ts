// companyctl user disable <name>: block a user; all of their sessions and tokens are revoked at once.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('disable')
    .description('disable a user (revokes their sessions and tokens)')
    .argument('<username>', 'user name')
    .addHelpText('after', '\nExample:\n  companyctl user disable bob')
    .action((username: string, _opts: unknown, c: Command) => run(c, (ctx) => disableRun(ctx, username)));
}

export async function disableRun(ctx: Context, username: string): Promise<number> {
  const { setUserDisabled } = await import('../../src/services/auth.js');
  const { authDeps } = await import('../../src/context.js');
  const { writeJson } = await import('../../src/io/output.js');
  const r = await setUserDisabled(authDeps(ctx), username, true);
  if (ctx.globals.json) writeJson(ctx, { username, disabled: true, ...r });
  else ctx.notice(`disabled ${username}${r.revokedSessions ? `; revoked ${r.revokedSessions} sessions` : ''}`);
  return 0;
}
