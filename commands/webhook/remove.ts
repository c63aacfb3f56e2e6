// companyctl webhook remove <id>: stop sending to a webhook and forget its secret.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('remove')
    .description('remove a webhook (its secret and delivery records go with it)')
    .argument('<id>', 'the webhook id (see "webhook list")')
    .addHelpText('after', '\nExample:\n  companyctl webhook remove 3')
    .action((id: string, _opts: unknown, c: Command) => run(c, (ctx) => removeRun(ctx, id)));
}

export async function removeRun(ctx: Context, ref: string): Promise<number> {
  const { removeWebhook } = await import('../../src/services/webhook.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const id = await webhookId(ref);
  await removeWebhook({ store: () => ctx.store(), actor: ctx.actor(), now: () => ctx.now() }, id);
  ctx.notice(`webhook ${id} removed`);
  if (ctx.globals.json) await writeRecord(ctx, { id, removed: true });
  return 0;
}

export async function webhookId(ref: string): Promise<number> {
  const { CompanyctlError } = await import('../../src/errors.js');
  if (!/^\d+$/.test(ref) || Number(ref) < 1) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `<id>: ${JSON.stringify(ref)} is not a webhook id`, { field: '<id>', hint: 'see "companyctl webhook list"' });
  }
  return Number(ref);
}
