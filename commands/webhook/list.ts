// companyctl webhook list: webhooks, their event patterns and delivery counts (never secrets).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('list')
    .description('list webhooks with their delivery counts and last error (never their secrets)')
    .addHelpText('after', '\nExamples:\n  companyctl webhook list\n  companyctl webhook list --json')
    .action((_opts: unknown, c: Command) => run(c, (ctx) => listRun(ctx)));
}

export async function listRun(ctx: Context): Promise<number> {
  const { listWebhooks } = await import('../../src/services/webhook.js');
  const { writeRecords } = await import('../../src/io/output.js');
  const hooks = await listWebhooks({ store: () => ctx.store() });
  if (hooks.length === 0 && !ctx.globals.json) ctx.notice('no webhooks; add one with "companyctl webhook add <url> --events company.*"');
  await writeRecords(ctx, hooks, ['id', 'url', 'events', 'delivered', 'failing', 'lastError', 'createdBy', 'createdAt']);
  return 0;
}
