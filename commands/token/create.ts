// companyctl token create: a named, revocable API token for cron and CI (shown once).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface TokenCreateOptions {
  name: string;
  role: string;
  expires: string;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('create')
    .description('create a named API token (printed once on stdout)')
    .requiredOption('--name <name>', 'a name to list and revoke it by, e.g. nightly-import')
    .option('--role <role>', 'admin, editor or viewer (at most your own)', 'viewer')
    .option('--expires <age>', 'lifetime, e.g. 30d, 90d (at most 366d)', '90d')
    .addHelpText('after', '\nExample:\n  companyctl token create --name nightly --role editor --expires 90d > nightly.token')
    .action((opts: TokenCreateOptions, c: Command) => run(c, (ctx) => createRun(ctx, opts)));
}

export async function createRun(ctx: Context, opts: TokenCreateOptions): Promise<number> {
  const { CompanyctlError } = await import('../../src/errors.js');
  const { parseDuration } = await import('../../src/io/flags.js');
  const { createApiToken, parseRole } = await import('../../src/services/auth.js');
  const { authDeps } = await import('../../src/context.js');
  const { writeJson } = await import('../../src/io/output.js');
  const role = parseRole(opts.role, '--role');
  const expiresMs = parseDuration('--expires', opts.expires, { min: 60_000, max: 366 * 86_400_000 });
  const t = await createApiToken(authDeps(ctx), ctx.identity!, { name: opts.name, role, expiresMs });
  if (ctx.globals.json) writeJson(ctx, { name: t.name, role: t.role, expiresAt: t.expiresAt, id: t.sessionId, token: t.token });
  else {
    ctx.io.stdout.write(`${t.token}\n`);
    ctx.notice(`token ${t.name} (${t.role}) until ${t.expiresAt}: shown once; pass it as COMPANYCTL_TOKEN`);
  }
  return 0;
}
