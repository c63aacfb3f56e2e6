// companyctl webhook test <id>: send one signed `webhook.test` event now and report the answer.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('test')
    .description('send a signed "webhook.test" event to a webhook now (exit 1 unless it answers 2xx)')
    .argument('<id>', 'the webhook id (see "webhook list")')
    .option('--timeout <ms>', 'how long to wait for the answer', '10000')
    .addHelpText('after', '\nExamples:\n  companyctl webhook test 3\n  companyctl webhook test 3 --json')
    .action((id: string, opts: { timeout: string }, c: Command) => run(c, (ctx) => testRun(ctx, id, opts)));
}

export async function testRun(ctx: Context, ref: string, opts: { timeout: string }): Promise<number> {
  const { CompanyctlError } = await import('../../src/errors.js');
  const { testWebhook } = await import('../../src/services/webhook.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const { webhookId } = await import('./remove.js');
  const id = await webhookId(ref);
  const { parseDuration } = await import('../../src/io/flags.js');
  const timeoutMs = parseDuration('--timeout', opts.timeout, { units: ['ms', 's', 'm'], bareUnit: 'ms', min: 1, max: 600_000, example: '10000, 10s, 1m' });
  const r = await testWebhook({ store: () => ctx.store(), now: () => ctx.now(), actor: ctx.actor() }, id, { timeoutMs });
  await writeRecord(ctx, r, ['field', 'value']);
  if (!r.ok) {
    throw new CompanyctlError('COMPANYCTL_WEBHOOK_DELIVERY_FAILED', `webhook ${id} did not accept the test event: ${r.error}`, {
      hint: 'check the URL, that the receiver runs, and that it answers 2xx',
      data: { id, status: r.status },
    });
  }
  ctx.notice(`webhook ${id} answered ${r.status} in ${r.ms} ms`);
  return 0;
}
