// companyctl broker set-password: keep the RabbitMQ password in the OS keychain (never in argv).
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface SetPasswordOptions {
  stdin?: boolean;
  delete?: boolean;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('set-password')
    .description("store the broker user's password in the OS keychain (asked with echo off, or --stdin)")
    .option('--stdin', 'read the password from stdin')
    .option('--delete', 'remove the stored password')
    .addHelpText('after', '\nExamples:\n  companyctl broker set-password\n  printf %s "$RABBIT_PASSWORD" | companyctl broker set-password --stdin\n  companyctl broker set-password --delete')
    .action((opts: SetPasswordOptions, c: Command) => run(c, (ctx) => setPasswordRun(ctx, opts)));
}

export async function setPasswordRun(ctx: Context, opts: SetPasswordOptions): Promise<number> {
  const { CompanyctlError } = await import('../../src/errors.js');
  const { parseBrokerConfig, passwordAccount } = await import('../../src/services/broker-config.js');
  const { keychain } = await import('../../src/infra/credentials.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const config = parseBrokerConfig(ctx.config().broker, ctx.paths.configFile);
  if (!config) {
    throw new CompanyctlError('COMPANYCTL_BROKER_NOT_CONFIGURED', `no "broker" section in the config file ${ctx.paths.configFile}`, {
      hint: 'add "broker": {"url": "amqp://user@host:5672/vhost"} first (see README, "Message broker")',
    });
  }
  const slot = { account: passwordAccount(config), file: '' };
  if (opts.delete) {
    const removed = await keychain.delete(slot);
    ctx.notice(removed ? `removed the password for ${config.url} from the OS keychain` : `no password for ${config.url} was stored`);
    await writeRecord(ctx, { broker: config.url, removed });
    return 0;
  }
  let password: string;
  if (opts.stdin) {
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.io.stdin) chunks.push(Buffer.from(chunk as Buffer));
    password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  } else {
    const { missingAnswer } = await import('../../src/io/prompter.js');
    if (!ctx.prompter.canPrompt) throw missingAnswer('--stdin', 'the broker password');
    password = await ctx.prompter.password(`Password for ${config.url}`);
  }
  if (password === '') throw new CompanyctlError('COMPANYCTL_MISSING_FIELD', 'the password is empty', { field: '--stdin' });
  await keychain.set(slot, password);
  ctx.notice(`stored the password for ${config.url} in the OS keychain`);
  await writeRecord(ctx, { broker: config.url, stored: true });
  return 0;
}
