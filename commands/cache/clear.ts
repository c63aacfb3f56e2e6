// companyctl cache clear: drop every cached entry of the current store.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('clear')
    .description('remove every file-cache entry of the current store')
    .addHelpText('after', '\nExample:\n  companyctl cache clear')
    .action((_opts: unknown, c: Command) => run(c, (ctx) => clearRun(ctx)));
}

export async function clearRun(ctx: Context): Promise<number> {
  const { FileCache } = await import('../../src/infra/cache.js');
  const { writeJson } = await import('../../src/io/output.js');
  const removed = new FileCache(ctx.paths.cacheDir, ctx.storeLocation().key).clear();
  const { recordSecurityEvent } = await import('../../src/services/security-events.js');
  await recordSecurityEvent(await ctx.store(), { type: 'cache.cleared', actor: ctx.actor(), target: null, data: { removed }, now: ctx.now() });
  if (ctx.globals.json) writeJson(ctx, { removed });
  else ctx.notice(`removed ${removed} cache entries`);
  return 0;
}
