// companyctl db status: where the store is and which migrations are applied or pending.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('status')
    .description('show the store and its schema state (exit 1 if it is not usable as is)')
    .addHelpText('after', '\nExample:\n  companyctl db status --json')
    .action((_opts: unknown, c: Command) => run(c, (ctx) => statusRun(ctx)));
}

export async function statusRun(ctx: Context): Promise<number> {
  const { inspectStore } = await import('../../src/infra/db/store.js');
  const { writeJson, writeRecord } = await import('../../src/io/output.js');
  const loc = ctx.storeLocation();
  const s = await inspectStore(loc);
  const state = !s.initialised ? 'not-initialised' : s.unknown.length > 0 ? 'newer-than-code' : s.pending.length > 0 ? 'needs-migration' : 'ready';
  const doc = { store: loc.display, dialect: loc.dialect, state, applied: s.applied, pending: s.pending, unknown: s.unknown };
  if (ctx.globals.json) writeJson(ctx, doc);
  else await writeRecord(ctx, { ...doc, applied: s.applied.join(', ') || '-', pending: s.pending.join(', ') || '-', unknown: s.unknown.join(', ') || '-' });
  return state === 'ready' ? 0 : 1;
}
