// companyctl user list: users, roles and whether they are disabled.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('list')
    .description('list users')
    .addHelpText('after', '\nExample:\n  companyctl user list --json')
    .action((_opts: unknown, c: Command) => run(c, (ctx) => listRun(ctx)));
}

export async function listRun(ctx: Context): Promise<number> {
  const { listUsers } = await import('../../src/services/auth.js');
  const { authDeps } = await import('../../src/context.js');
  const { outputFormat, writeJson, writeTable, plainLine } = await import('../../src/io/output.js');
  const users = await listUsers(authDeps(ctx));
  const format = outputFormat(ctx);
  if (format === 'json') return writeJson(ctx, users), 0;
  const rows = users.map((u) => [u.id, u.username, u.role, u.disabledAt ? 'disabled' : 'active', u.createdAt]);
  if (format === 'table') await writeTable(ctx, ['id', 'username', 'role', 'state', 'createdAt'], rows);
  else for (const r of rows) ctx.io.stdout.write(plainLine(r));
  return 0;
}
