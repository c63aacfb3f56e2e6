// companyctl login: check a password, open a session, keep its token in the OS keychain
// (or, with --insecure-storage, a 0600 file). Never takes a password flag.
import type { Command } from 'commander';
import type { Runner } from '../src/cli.js';
import type { Context } from '../src/context.js';

export interface LoginOptions {
  username?: string;
  passwordStdin?: boolean;
  insecureStorage?: boolean;
  expires: string;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('login')
    .description('log in to the store; the token goes to the OS keychain')
    .option('-u, --username <name>', 'user name (asked on a terminal)')
    .option('--password-stdin', 'read the password from stdin (for scripts)')
    .option('--insecure-storage', 'no keychain (headless): keep the token in a 0600 file and say where')
    .option('--expires <age>', 'session lifetime, e.g. 12h, 7d, 30d', '7d')
    .addHelpText(
      'after',
      '\nExamples:\n  companyctl login -u alice\n  printf %s "$PASSWORD" | companyctl login -u alice --password-stdin --insecure-storage',
    )
    .action((opts: LoginOptions, c: Command) => run(c, (ctx) => loginRun(ctx, opts)));
}

export async function loginRun(ctx: Context, opts: LoginOptions): Promise<number> {
  const { CompanyctlError } = await import('../src/errors.js');
  const { parseDuration } = await import('../src/io/flags.js');
  const { readPassword } = await import('../src/io/password.js');
  const { missingAnswer } = await import('../src/io/prompter.js');
  const { credentialSlot, keychain, tokenFile } = await import('../src/infra/credentials.js');
  const { login, logout } = await import('../src/services/auth.js');
  const { authDeps } = await import('../src/context.js');
  const { writeJson } = await import('../src/io/output.js');
  const expiresMs = parseDuration('--expires', opts.expires, { min: 60_000, max: 366 * 86_400_000 });
  let username = opts.username;
  if (!username) {
    if (!ctx.prompter.canPrompt || opts.passwordStdin) throw missingAnswer('--username', 'a user name');
    username = await ctx.prompter.input('User name', { required: true });
  }
  const password = await readPassword(ctx, { fromStdin: opts.passwordStdin });
  const deps = authDeps(ctx);
  const session = await login(deps, username, password, { expiresMs });
  const slot = credentialSlot(ctx.paths.configDir, ctx.profile(), ctx.storeLocation().key);
  let storedIn: string;
  try {
    if (opts.insecureStorage) {
      tokenFile.set(slot, session.token);
      await keychain.delete(slot).catch(() => false);
      storedIn = slot.file;
      // Always said, even with --quiet or without a terminal: the user opted out of the keychain.
      ctx.io.stderr.write(`warning: the token is stored in a plain file, ${slot.file} (mode 0600); anyone who can read it acts as ${session.username}\n`);
    } else {
      await keychain.set(slot, session.token);
      tokenFile.delete(slot);
      storedIn = 'keychain';
    }
  } catch (e) {
    // Fail closed: no stored token, so no live session left behind either.
    await logout(deps, session).catch(() => undefined);
    throw e;
  }
  if (ctx.globals.json) writeJson(ctx, { username: session.username, role: session.role, expiresAt: session.expiresAt, storedIn, profile: ctx.profile() });
  else ctx.notice(`logged in as ${session.username} (${session.role}) until ${session.expiresAt}; token in ${storedIn === 'keychain' ? 'the OS keychain' : storedIn}`);
  return 0;
}
