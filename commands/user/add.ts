// companyctl user add <name>: a new user with a role; the password is prompted or read from stdin.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('add')
    .description('add a user')
    .argument('<username>', 'user name')
    .option('--role <role>', 'admin, editor or viewer', 'viewer')
    .option('--password-stdin', 'read the password from stdin')
    .addHelpText('after', '\nExamples:\n  companyctl user add bob --role editor\n  printf %s "$PW" | companyctl user add ci-bot --role viewer --password-stdin')
    .action((username: string, opts: { role: string; passwordStdin?: boolean }, c: Command) => run(c, (ctx) => addRun(ctx, username, opts)));
}

export async function addRun(ctx: Context, username: string, opts: { role: string; passwordStdin?: boolean }): Promise<number> {
  const { addUser, parseRole, passwordRules } = await import('../../src/services/auth.js');
  const { readPassword } = await import('../../src/io/password.js');
  const { authDeps } = await import('../../src/context.js');
  const { writeJson } = await import('../../src/io/output.js');
  const role = parseRole(opts.role, '--role');
  const password = await readPassword(ctx, { fromStdin: opts.passwordStdin, confirm: true, prompt: `Password for ${username}`, rules: passwordRules(username) });
  const user = await addUser(authDeps(ctx), username, password, role);
  if (ctx.globals.json) writeJson(ctx, user);
  else ctx.notice(`added user ${user.username} (${user.role})`);
  return 0;
}
