// companyctl webhook add <url>: send matching events, signed, to a URL (admin).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface WebhookAddOptions {
  events: string;
  secretStdin?: boolean;
  description?: string;
  allowHttp?: boolean;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('add')
    .description('send events matching --events to <url>, signed with a secret (read from stdin, or generated and shown once)')
    .argument('<url>', 'the receiver, https:// (http:// only for localhost, or with --allow-http)')
    .requiredOption('--events <patterns>', 'comma-separated event types or patterns: company.*, import.completed, *')
    .option('--secret-stdin', 'read the signing secret (16-256 characters) from stdin; without it one is generated')
    .option('--description <text>', 'a note for "webhook list"')
    .option('--allow-http', 'allow a plain-http URL that is not localhost')
    .addHelpText(
      'after',
      `
Each delivery is a POST of {"id","type","createdAt","actor","companyId","data"} with the header
X-Companyctl-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the secret>.

Examples:
  printf %s "$HOOK_SECRET" | companyctl webhook add https://hooks.example.com/companyctl --events "company.*,import.completed" --secret-stdin
  companyctl webhook add https://crm.example.com/in --events company.created --json   # prints the generated secret once`,
    )
    .action((url: string, opts: WebhookAddOptions, c: Command) => run(c, (ctx) => addRun(ctx, url, opts)));
}

export async function addRun(ctx: Context, url: string, opts: WebhookAddOptions): Promise<number> {
  const { CompanyctlError } = await import('../../src/errors.js');
  const { addWebhook, parseEventPatterns } = await import('../../src/services/webhook.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const events = parseEventPatterns(opts.events);
  let secret: string | undefined;
  if (opts.secretStdin) {
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.io.stdin) chunks.push(Buffer.from(chunk as Buffer));
    secret = Buffer.concat(chunks).toString('utf8');
    if (secret.trim() === '') throw new CompanyctlError('COMPANYCTL_MISSING_FIELD', '--secret-stdin: stdin was empty', { field: '--secret-stdin' });
  }
  const { webhook, generatedSecret } = await addWebhook({ store: () => ctx.store(), now: () => ctx.now(), actor: ctx.actor() }, { url, events, secret, description: opts.description, allowHttp: opts.allowHttp });
  await writeRecord(ctx, { ...webhook, ...(generatedSecret ? { secret: generatedSecret } : {}) }, ['field', 'value']);
  ctx.notice(
    generatedSecret
      ? `webhook ${webhook.id} added; its secret is shown once: give it to the receiver to verify signatures`
      : `webhook ${webhook.id} added; try it with "companyctl webhook test ${webhook.id}"`,
  );
  return 0;
}
