// companyctl auth status: who, role, expiry, where the token is stored (token masked).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('status')
    .description('show who is logged in, the role, expiry and where the token is kept')
    .addHelpText('after', '\nExample:\n  companyctl auth status --json')
    .action((_opts: unknown, c: Command) => run(c, (ctx) => statusRun(ctx)));
}

export async function statusRun(ctx: Context): Promise<number> {
  const { credentialSlot, findToken } = await import('../../src/infra/credentials.js');
  const { authenticate } = await import('../../src/services/auth.js');
  const { authDeps } = await import('../../src/context.js');
  const { CompanyctlError } = await import('../../src/errors.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const slot = credentialSlot(ctx.paths.configDir, ctx.profile(), ctx.storeLocation().key);
  const found = await findToken(ctx.env, slot);
  if (!found) {
    throw new CompanyctlError('COMPANYCTL_AUTH_REQUIRED', `not logged in to ${ctx.storeLocation().display} (profile ${ctx.profile()})`, { hint: 'run "companyctl login"' });
  }
  const id = await authenticate(authDeps(ctx), found.token);
  const doc = {
    store: ctx.storeLocation().display,
    profile: ctx.profile(),
    username: id.username,
    role: id.role,
    kind: id.kind,
    tokenName: id.tokenName,
    expiresAt: id.expiresAt,
    storedIn: found.source === 'file' ? slot.file : found.source,
    token: `****${found.token.slice(-6)}`,
  };
  await writeRecord(ctx, doc);
  return 0;
}
