// companyctl token list: named API tokens (never their values).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('list')
    .description('list API tokens (names, roles, expiry; never the tokens)')
    .option('--all', 'include revoked and expired tokens')
    .addHelpText('after', '\nExample:\n  companyctl token list --json')
    .action((opts: { all?: boolean }, c: Command) => run(c, (ctx) => listRun(ctx, opts)));
}

export async function listRun(ctx: Context, opts: { all?: boolean }): Promise<number> {
  const { listTokens } = await import('../../src/services/auth.js');
  const { authDeps } = await import('../../src/context.js');
  const { outputFormat, writeJson, writeTable, plainLine } = await import('../../src/io/output.js');
  const tokens = await listTokens(authDeps(ctx), opts);
  const format = outputFormat(ctx);
  if (format === 'json') return writeJson(ctx, tokens), 0;
  const cols = ['name', 'role', 'state', 'createdBy', 'createdAt', 'expiresAt'] as const;
  const rows = tokens.map((t) => cols.map((c) => t[c]));
  if (format === 'table') await writeTable(ctx, [...cols], rows);
  else for (const r of rows) ctx.io.stdout.write(plainLine(r));
  return 0;
}
