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
  const { outputFormat, writeJson, writeRecords } = await import('../../src/io/output.js');
  const users = await listUsers(authDeps(ctx));
  if (outputFormat(ctx) === 'json') return writeJson(ctx, users), 0;
  const rows = users.map((u) => ({ ...u, state: u.disabledAt ? 'disabled' : 'active' }));
  await writeRecords(ctx, rows, ['id', 'username', 'role', 'state', 'createdAt']);
  return 0;
}
