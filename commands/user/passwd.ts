// companyctl user passwd [name]: change your own password (or, as admin, anyone's).
// Every session of that user is revoked; they log in again.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('passwd')
    .description('change a password (yours, or any user as admin); revokes that user\'s sessions')
    .argument('[username]', 'user name (default: you)')
    .option('--password-stdin', 'read from stdin: the new password (admin, for another user), or your current and new password on two lines')
    .addHelpText('after', '\nExamples:\n  companyctl user passwd\n  printf "%s\\n%s" "$OLD" "$NEW" | companyctl user passwd --password-stdin\n  printf %s "$NEW" | companyctl user passwd bob --password-stdin')
    .action((username: string | undefined, opts: { passwordStdin?: boolean }, c: Command) => run(c, (ctx) => passwdRun(ctx, username, opts)));
}

export async function passwdRun(ctx: Context, username: string | undefined, opts: { passwordStdin?: boolean }): Promise<number> {
  const { confirmPassword, requireRole, setUserPassword } = await import('../../src/services/auth.js');
  const { readPassword, readTwoPasswordLines } = await import('../../src/io/password.js');
  const { authDeps } = await import('../../src/context.js');
  const { writeJson } = await import('../../src/io/output.js');
  const me = ctx.identity!;
  const target = (username ?? me.username).toLowerCase();
  // An API token acts for its creator but with a capped role: it may not take over the account.
  if (target !== me.username || me.kind === 'token') requireRole(me, 'admin', target === me.username ? 'changing a password with an API token' : "changing another user's password");
  let password: string;
  if (target === me.username) {
    // Your own: prove you know the current one, so an unlocked terminal is not an account takeover.
    let current: string;
    if (opts.passwordStdin) [current, password] = await readTwoPasswordLines(ctx, '--password-stdin');
    else {
      current = await readPassword(ctx, { prompt: 'Current password' });
      password = await readPassword(ctx, { confirm: true, prompt: 'New password' });
    }
    await confirmPassword(authDeps(ctx), target, current);
  } else {
    password = await readPassword(ctx, { fromStdin: opts.passwordStdin, confirm: true, prompt: `New password for ${target}` });
  }
  const r = await setUserPassword(authDeps(ctx), target, password);
  if (ctx.globals.json) writeJson(ctx, { username: target, ...r });
  else ctx.notice(`changed the password of ${target}; revoked ${r.revokedSessions} sessions${target === me.username ? ' (log in again)' : ''}`);
  return 0;
}
