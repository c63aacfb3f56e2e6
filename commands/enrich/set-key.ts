// companyctl enrich set-key: keep the company-data API key in the OS keychain (never in argv).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface SetKeyOptions {
  stdin?: boolean;
  delete?: boolean;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('set-key')
    .description("store the enrich API's key in the OS keychain (asked with echo off, or --stdin)")
    .option('--stdin', 'read the key from stdin')
    .option('--delete', 'remove the stored key')
    .addHelpText('after', '\nExamples:\n  companyctl enrich set-key\n  printf %s "$ACME_API_KEY" | companyctl enrich set-key --stdin\n  companyctl enrich set-key --delete')
    .action((opts: SetKeyOptions, c: Command) => run(c, (ctx) => setKeyRun(ctx, opts)));
}

export async function setKeyRun(ctx: Context, opts: SetKeyOptions): Promise<number> {
  const { CompanyctlError } = await import('../../src/errors.js');
  const { parseEnrichConfig } = await import('../../src/services/enrich-config.js');
  const { apiKeyAccount } = await import('../../src/services/enrich.js');
  const { keychain } = await import('../../src/infra/credentials.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const config = parseEnrichConfig(ctx.config().enrich, ctx.paths.configFile);
  const slot = { account: apiKeyAccount(config), file: '' };
  const origin = new URL(config.baseUrl).origin;
  if (opts.delete) {
    const removed = await keychain.delete(slot);
    await audited(ctx, 'enrich.key_deleted', origin, { api: origin, removed });
    ctx.notice(removed ? `removed the API key for ${origin} from the OS keychain` : `no API key for ${origin} was stored`);
    await writeRecord(ctx, { api: origin, removed });
    return 0;
  }
  let key: string;
  if (opts.stdin) {
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.io.stdin) chunks.push(Buffer.from(chunk as Buffer));
    key = Buffer.concat(chunks).toString('utf8').trim();
  } else {
    const { missingAnswer } = await import('../../src/io/prompter.js');
    if (!ctx.prompter.canPrompt) throw missingAnswer('--stdin', 'the API key');
    key = (await ctx.prompter.password(`API key for ${origin}`)).trim();
  }
  if (key === '') throw new CompanyctlError('COMPANYCTL_MISSING_FIELD', 'the API key is empty', { field: '--stdin' });
  if (/\s/.test(key)) throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', 'the API key holds white space', { field: '--stdin', hint: 'pipe only the key, e.g. printf %s "$KEY"' });
  await keychain.set(slot, key);
  await audited(ctx, 'enrich.key_set', origin, { api: origin });
  ctx.notice(`stored the API key for ${origin} in the OS keychain`);
  await writeRecord(ctx, { api: origin, stored: true });
  return 0;
}

async function audited(ctx: Context, type: string, origin: string, data: Record<string, unknown>): Promise<void> {
  const { recordSecurityEvent } = await import('../../src/services/security-events.js');
  await recordSecurityEvent(await ctx.store(), { type, actor: ctx.actor(), target: `api:${origin}`, data, now: ctx.now() });
}
