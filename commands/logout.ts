// companyctl logout: revoke the session in the store, then remove the local token.
import type { Command } from 'commander';
import type { Runner } from '../src/cli.js';
import type { Context } from '../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('logout')
    .description('end the session (revoked in the store) and remove the stored token')
    .addHelpText('after', '\nExample:\n  companyctl logout')
    .action((_opts: unknown, c: Command) => run(c, (ctx) => logoutRun(ctx)));
}

export async function logoutRun(ctx: Context): Promise<number> {
  const { credentialSlot, keychain, tokenFile } = await import('../src/infra/credentials.js');
  const { authenticate, logout } = await import('../src/services/auth.js');
  const { authDeps } = await import('../src/context.js');
  const { CompanyctlError } = await import('../src/errors.js');
  const { writeJson } = await import('../src/io/output.js');
  const slot = credentialSlot(ctx.paths.configDir, ctx.profile(), ctx.storeLocation().key);
  const stored = tokenFile.get(slot, { allowInsecure: true }) ?? (await keychain.get(slot).catch(() => null));
  let revoked = false;
  if (stored) {
    try {
      await logout(authDeps(ctx), await authenticate(authDeps(ctx), stored));
      revoked = true;
    } catch (e) {
      // An expired or already revoked token is still removed locally.
      if (!(e instanceof CompanyctlError) || e.exitCode !== 4) throw e;
    }
  }
  const removedFile = tokenFile.delete(slot);
  const removedKeychain = await keychain.delete(slot).catch(() => false);
  if (!stored && ctx.env.COMPANYCTL_TOKEN) ctx.notice('COMPANYCTL_TOKEN is set in the environment: unset it, or revoke it with "companyctl token revoke"');
  if (ctx.globals.json) writeJson(ctx, { revoked, removed: removedFile || removedKeychain });
  else ctx.notice(stored ? `logged out${revoked ? '' : ' (the session had already ended)'}` : 'not logged in; nothing to do');
  return 0;
}
