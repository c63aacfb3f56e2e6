// companyctl whoami: the user and role behind the current token.
import type { Command } from 'commander';
import type { Runner } from '../src/cli.js';
import type { Context } from '../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('whoami')
    .description('print the logged-in user and role')
    .addHelpText('after', '\nExample:\n  companyctl whoami --json')
    .action((_opts: unknown, c: Command) => run(c, (ctx) => whoamiRun(ctx)));
}

export async function whoamiRun(ctx: Context): Promise<number> {
  const { writeJson } = await import('../src/io/output.js');
  const id = ctx.identity!;
  if (ctx.globals.json) writeJson(ctx, { username: id.username, role: id.role, kind: id.kind, tokenName: id.tokenName });
  else ctx.io.stdout.write(`${id.username}\t${id.role}${id.tokenName ? `\ttoken ${id.tokenName}` : ''}\n`);
  return 0;
}
