// companyctl cache stats: entries, size, hits and misses of the file cache.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('stats')
    .description('show the file cache of the current store')
    .addHelpText('after', '\nExample:\n  companyctl cache stats --json')
    .action((_opts: unknown, c: Command) => run(c, (ctx) => statsRun(ctx)));
}

export async function statsRun(ctx: Context): Promise<number> {
  const { FileCache } = await import('../../src/infra/cache.js');
  const { writeRecord } = await import('../../src/io/output.js');
  const s = new FileCache(ctx.paths.cacheDir, ctx.storeLocation().key).stats();
  const lookups = s.hits + s.misses;
  const doc = { ...s, hitRate: lookups === 0 ? null : Number((s.hits / lookups).toFixed(4)), ttlSeconds: ctx.cacheTtlSeconds() };
  await writeRecord(ctx, doc);
  return 0;
}
