// companyctl user set-role <name> <role>: takes effect at once on this host.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('set-role')
    .description("change a user's role")
    .argument('<username>', 'user name')
    .argument('<role>', 'admin, editor or viewer')
    .addHelpText('after', '\nExample:\n  companyctl user set-role bob editor')
    .action((username: string, role: string, _opts: unknown, c: Command) => run(c, (ctx) => setRoleRun(ctx, username, role)));
}

export async function setRoleRun(ctx: Context, username: string, roleArg: string): Promise<number> {
  const { parseRole, setUserRole } = await import('../../src/services/auth.js');
  const { authDeps } = await import('../../src/context.js');
  const { writeJson } = await import('../../src/io/output.js');
  const role = parseRole(roleArg, '<role>');
  await setUserRole(authDeps(ctx), username, role);
  if (ctx.globals.json) writeJson(ctx, { username, role });
  else ctx.notice(`${username} is now ${role}`);
  return 0;
}
