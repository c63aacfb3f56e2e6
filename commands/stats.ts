// companyctl stats: a dashboard of the toolkit's health (companies, events, imports, commands,
// cache, alerts); --check exits 1 while an alert threshold is exceeded (for cron and CI).
import type { Command } from 'commander';
import type { Runner } from '../src/cli.js';
import type { Context } from '../src/context.js';

export interface StatsOptions {
  check?: boolean;
  top: string;
}

export function register(program: Command, run: Runner): void {
  program
    .command('stats')
    .description('show counts, event delivery, imports, commands, cache and alerts; --check exits 1 on an alert')
    .option('--check', 'exit 1 if any alert threshold is exceeded (alerts are in the config file)')
    .option('--top <n>', 'rows per breakdown', '10')
    .addHelpText(
      'after',
      `
The same numbers are written as a Prometheus text file after every command
(<state dir>/companyctl.prom, or --metrics-file / "metricsFile" in the config).

Examples:
  companyctl stats
  companyctl stats --json | jq .events
  0 * * * *  COMPANYCTL_TOKEN=... companyctl stats --check --quiet > /dev/null || page-someone`,
    )
    .action((opts: StatsOptions, c: Command) => run(c, (ctx) => statsRun(ctx, opts)));
}

export async function statsRun(ctx: Context, opts: StatsOptions): Promise<number> {
  const { CompanyctlError } = await import('../src/errors.js');
  if (!/^\d+$/.test(opts.top) || Number(opts.top) < 1) throw new CompanyctlError('COMPANYCTL_USAGE', `--top: ${JSON.stringify(opts.top)} is not a positive whole number`, { field: '--top' });
  const { statsSnapshot } = await import('../src/services/stats.js');
  const { eventsEnv } = await import('../src/context.js');
  const { outputFormat, writeJson, plainLine } = await import('../src/io/output.js');
  const s = await statsSnapshot(eventsEnv(ctx), { top: Number(opts.top) });
  const format = outputFormat(ctx);
  if (format === 'json') writeJson(ctx, s);
  else if (format === 'table') ctx.io.stdout.write(await dashboard(s, await (await import('../src/io/colour.js')).colours(ctx)));
  else for (const row of plainRows(s)) ctx.io.stdout.write(plainLine(row));
  if (opts.check && s.alerts.length > 0) {
    throw new CompanyctlError('COMPANYCTL_ALERTS_FIRING', `${s.alerts.length} alert${s.alerts.length === 1 ? '' : 's'}: ${s.alerts.map((a) => a.message).join('; ')}`, {
      hint: 'thresholds are "alerts" in the config file; see "companyctl stats"',
      data: { alerts: s.alerts },
    });
  }
  return 0;
}

type Snapshot = Awaited<ReturnType<typeof import('../src/services/stats.js').statsSnapshot>>;

/** Stable `section<TAB>name<TAB>value` lines for scripts. */
function plainRows(s: Snapshot): unknown[][] {
  const rows: unknown[][] = [['companies', 'live', s.companies.live]];
  for (const [k, v] of Object.entries(s.companies.byStatus)) rows.push(['companies', `status:${k}`, v]);
  for (const r of s.companies.byCountry) rows.push(['companies', `country:${r.value}`, r.count]);
  for (const r of s.companies.byIndustry) rows.push(['companies', `industry:${r.value}`, r.count]);
  rows.push(['events', 'pending', s.events.pending], ['events', 'failed', s.events.failed], ['events', 'dead', s.events.dead]);
  for (const [h, n] of Object.entries(s.events.delivered)) rows.push(['events', `delivered:${h}`, n]);
  for (const [k, n] of Object.entries(s.imports.rows)) rows.push(['imports', `rows:${k}`, n]);
  for (const [k, n] of Object.entries(s.imports.runs)) rows.push(['imports', `runs:${k}`, n]);
  if (s.imports.last) {
    rows.push(['imports', 'last:state', s.imports.last.state], ['imports', 'last:rows', s.imports.last.rows], ['imports', 'last:rejectRate', s.imports.last.rejectRate]);
    rows.push(['imports', 'last:seconds', s.imports.last.seconds], ['imports', 'last:rowsPerSecond', s.imports.last.rowsPerSecond]);
  }
  rows.push(['imports', 'lastSuccessAt', s.imports.lastSuccessAt]);
  rows.push(['commands', 'total', s.commands.total], ['commands', 'failed', s.commands.failed]);
  for (const c of s.commands.byCommand) rows.push(['commands', c.command, c.count]);
  rows.push(['cache', 'hits', s.cache.hits], ['cache', 'misses', s.cache.misses], ['cache', 'hitRate', s.cache.hitRate]);
  for (const a of s.alerts) rows.push(['alert', a.name, a.message]);
  return rows;
}

async function dashboard(s: Snapshot, chalk: import('chalk').ChalkInstance): Promise<string> {
  const { cell } = await import('../src/io/output.js');
  const h = (t: string) => chalk.bold(t);
  const n = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toLocaleString('en-US'));
  const bar = (v: number, max: number) => '█'.repeat(max > 0 ? Math.max(v > 0 ? 1 : 0, Math.round((v / max) * 20)) : 0);
  const list = (rows: { value: string; count: number }[]) => {
    const max = Math.max(0, ...rows.map((r) => r.count));
    const w = Math.max(4, ...rows.map((r) => cell(r.value).length));
    return rows.map((r) => `    ${cell(r.value).padEnd(w)} ${n(r.count).padStart(10)} ${chalk.cyan(bar(r.count, max))}`).join('\n');
  };
  const out: string[] = [];
  out.push(h(`Companies  ${n(s.companies.live)} live`));
  out.push(`  status   ${Object.entries(s.companies.byStatus).map(([k, v]) => `${k} ${n(v)}`).join('  ') || '-'}`);
  if (s.companies.byCountry.length) out.push('  by country', list(s.companies.byCountry));
  if (s.companies.byIndustry.length) out.push('  by industry', list(s.companies.byIndustry));
  const ev = s.events;
  const dead = ev.dead > 0 ? chalk.red(`dead ${n(ev.dead)}`) : `dead ${n(ev.dead)}`;
  out.push('', h('Events'), `  pending ${n(ev.pending)}  failed ${n(ev.failed)}  ${dead}  delivered ${Object.entries(ev.delivered).map(([k, v]) => `${k} ${n(v)}`).join(', ') || '0'}`);
  const im = s.imports;
  out.push('', h('Imports'), `  rows inserted ${n(im.rows.inserted)}  updated ${n(im.rows.updated)}  unchanged ${n(im.rows.unchanged)}  rejected ${n(im.rows.rejected)}  failed chunks ${n(im.failedChunks)}`);
  // Runs by how they ended: "with rejects" (exit 3) is not "failed" (exit 1).
  const run = (k: string) => n(im.runs[k] ?? 0);
  out.push(`  runs     completed ${run('completed')}  with rejects ${run('completed_with_rejects')}  failed ${run('failed')}  cancelled ${run('cancelled')}`);
  if (im.last) {
    const rate = im.last.rejectRate === null ? '-' : `${(im.last.rejectRate * 100).toFixed(2)}%`;
    out.push(`  last     job ${im.last.jobId ?? '-'} ${im.last.state}, ${n(im.last.rows)} rows, ${rate} rejected, ${im.last.seconds} s, ${n(im.last.rowsPerSecond)} rows/s`);
  }
  out.push(`  last success ${im.lastSuccessAt ?? 'never'}${im.hoursSinceLastSuccess === null ? '' : ` (${im.hoursSinceLastSuccess} h ago)`}`);
  out.push('', h(`Commands  ${n(s.commands.total)} run, ${n(s.commands.failed)} failed`));
  for (const c of s.commands.byCommand) out.push(`  ${cell(c.command).padEnd(20)} ${n(c.count).padStart(8)}  ${c.failed ? chalk.yellow(`${n(c.failed)} failed`) : ''}${c.failed ? '  ' : ''}avg ${c.avgSeconds} s`);
  out.push('', h('Cache'), `  hits ${n(s.cache.hits)}  misses ${n(s.cache.misses)}  hit rate ${s.cache.hitRate === null ? '-' : `${(s.cache.hitRate * 100).toFixed(1)}%`}`);
  out.push('', h('Alerts'), ...(s.alerts.length ? s.alerts.map((a) => chalk.red(`  ✗ ${a.name}: ${cell(a.message)}`)) : [chalk.green('  ✓ none')]));
  out.push('', chalk.dim(`metrics file ${cell(s.metricsFile)}`));
  return `${out.join('\n')}\n`;
}
