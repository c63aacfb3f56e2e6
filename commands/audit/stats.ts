// companyctl audit stats: lines per actor, action and day.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';
// The filter flags are the parent's too (`audit --action …`): commander hands them to `audit`.
import { addFilterFlags, type AuditQueryOptions } from './query.js';

export function register(parent: Command, run: Runner): void {
  addFilterFlags(parent.command('stats').description('summarise the audit log by actor, action and day'))
    .addHelpText('after', '\nExamples:\n  companyctl audit stats\n  companyctl audit stats --since 30d --json')
    .action((opts: AuditQueryOptions, c: Command) => run(c, (ctx) => statsRun(ctx, { ...c.parent?.opts<AuditQueryOptions>(), ...opts })));
}

export async function statsRun(ctx: Context, opts: AuditQueryOptions): Promise<number> {
  const { auditFilter } = await import('./query.js');
  const filter = await auditFilter(ctx, opts);
  const { auditStats } = await import('../../src/services/audit.js');
  const { outputFormat, writeJson, writeTable, plainLine } = await import('../../src/io/output.js');
  const s = await auditStats(await ctx.store(), filter);
  const format = outputFormat(ctx);
  if (format === 'json') return writeJson(ctx, s), 0;
  const rows: [string, string, number][] = [];
  for (const [by, counts] of [
    ['actor', s.byActor],
    ['action', s.byAction],
    ['day', s.byDay],
  ] as const) {
    const entries = Object.entries(counts);
    if (by !== 'day') entries.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    for (const [k, n] of entries) rows.push([by, k, n]);
  }
  if (format === 'table') {
    ctx.notice(`${s.lines} audit lines${s.first ? ` from ${s.first} to ${s.last}` : ''}`);
    if (rows.length) await writeTable(ctx, ['by', 'value', 'lines'], rows);
  } else {
    ctx.io.stdout.write(plainLine(['total', 'lines', s.lines]));
    for (const r of rows) ctx.io.stdout.write(plainLine(r));
  }
  return 0;
}
