// Copy benchmark: a SQLite store of N companies (bench:import's CSV, imported once, untimed) is
// copied to an empty PostgreSQL database with `companyctl db copy --to`, next to the reference
// measured in the same run: `companyctl import` of the same CSV into a fresh PostgreSQL store.
// Reports seconds, CPU seconds and companies/s of each, and the ratio copy / import (target >= 1.0:
// a copy has nothing to validate).
//   npm run bench:copy -- [--rows N] [--repeat R] [--json] [--pg-url URL]
// With --repeat R the two runs alternate R times and each reports its fastest run.
// It reports; it exits 1 only when a run fails, not when the target is missed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generate } from './bench-import.mjs';
import { benchDatabase } from './bench-lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'companyctl.js');
const PASSWORD = 'bench-horse-battery-9';
const TARGET = 1.0;

function options() {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      repeat: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      'pg-url': { type: 'string' },
    },
  });
  const rows = Number(String(values.rows ?? process.env.BENCH_ROWS ?? 1_000_000).replace(/[_,]/g, ''));
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`--rows must be a positive integer, got ${JSON.stringify(values.rows)}`);
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a positive integer, got ${JSON.stringify(values.repeat)}`);
  const pgUrl = values['pg-url'] ?? process.env.COMPANYCTL_TEST_PG_URL;
  if (!pgUrl) throw new Error('needs a PostgreSQL server: set COMPANYCTL_TEST_PG_URL or pass --pg-url');
  return { rows, repeat, json: values.json, pgUrl };
}

/** Run companyctl, timing it with its CPU seconds and peak RSS (GNU time). */
function timed(args, env, input) {
  spawnSync('sync');
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', process.execPath, BIN, ...args], { env, input, encoding: 'utf8', maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const lines = (r.stderr ?? '').trim().split('\n');
  const [rssKb, user, sys] = lines[lines.length - 1].split(' ').map(Number);
  if (r.status !== 0) throw new Error(`companyctl ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}\n${r.stdout}`);
  return { seconds, cpuSeconds: Math.round((user + sys) * 100) / 100, peakRssMb: Math.round(rssKb / 1024), stdout: r.stdout };
}

function companyctl(args, env, input) {
  const r = spawnSync(process.execPath, [BIN, ...args], { env, input, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0 && r.status !== 3) throw new Error(`companyctl ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`);
  return r;
}

/** A home with a logged-in admin on the store `db` (a SQLite file under it when undefined). */
function home(db) {
  const dir = mkdtempSync(join(tmpdir(), 'companyctl-bench-copy-'));
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, COMPANYCTL_HOME: dir, NO_COLOR: '1', ...(db ? { COMPANYCTL_DB: db } : {}) };
  companyctl(['init', '--password-stdin'], env, PASSWORD);
  companyctl(['login', '-u', 'admin', '--password-stdin', '--insecure-storage', '--quiet'], env, PASSWORD);
  return { dir, env, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

async function main() {
  const opts = options();
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli.js'))) throw new Error('dist/src/cli.js is missing: run `npm run build` first');
  const say = (s) => opts.json || process.stderr.write(`${s}\n`);
  say(`generating ${opts.rows.toLocaleString('en-US')} rows ...`);
  const file = await generate(opts.rows);
  say(`${file}: ${(statSync(file).size / 1e6).toFixed(0)} MB`);
  say('the SQLite store to copy: companyctl import (untimed) ...');
  const source = home();
  const fastest = (runs) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const imports = [];
  const copies = [];
  try {
    const loaded = JSON.parse(companyctl(['import', file, '--json'], source.env).stdout);
    if (loaded.rows !== opts.rows) throw new Error(`the import read ${loaded.rows} rows, expected ${opts.rows}`);
    for (let i = 0; i < opts.repeat; i++) {
      const round = opts.repeat > 1 ? ` (round ${i + 1} of ${opts.repeat})` : '';
      say(`reference: companyctl import into a fresh PostgreSQL store${round} ...`);
      const a = await benchDatabase(opts.pgUrl, `companyctl_bench_copy_${process.pid}_import_${i}`);
      const b = await benchDatabase(opts.pgUrl, `companyctl_bench_copy_${process.pid}_copy_${i}`);
      const target = home(a.url);
      try {
        const r = timed(['import', file, '--json'], target.env);
        imports.push({ seconds: r.seconds, cpuSeconds: r.cpuSeconds, peakRssMb: r.peakRssMb, rowsPerSecond: Math.round(opts.rows / r.seconds) });
        say(`companyctl db copy --to an empty PostgreSQL database${round} ...`);
        const c = timed(['db', 'copy', '--to', b.url, '--json'], source.env);
        const report = JSON.parse(c.stdout);
        const company = report.tables.find((t) => t.table === 'company');
        if (!report.ok || company.targetRows !== opts.rows) throw new Error(`the copy is incomplete: ${JSON.stringify(company)}`);
        copies.push({ seconds: c.seconds, cpuSeconds: c.cpuSeconds, peakRssMb: c.peakRssMb, rowsPerSecond: Math.round(opts.rows / c.seconds), rowsCopied: report.rows });
      } finally {
        target.cleanup();
        await a.drop();
        await b.drop();
      }
    }
  } finally {
    source.cleanup();
  }
  const reference = fastest(imports);
  const copy = fastest(copies);
  const ratio = Math.round((copy.rowsPerSecond / reference.rowsPerSecond) * 100) / 100;
  const result = { rows: opts.rows, repeat: opts.repeat, reference, copy, ratio, target: TARGET };
  if (opts.json) return void process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  const line = (label, r) =>
    `${label.padEnd(40)} ${r.seconds.toFixed(1).padStart(7)} s (cpu ${r.cpuSeconds.toFixed(1).padStart(5)} s) ${r.rowsPerSecond.toLocaleString('en-US').padStart(10)} companies/s ${String(r.peakRssMb).padStart(5)} MB`;
  process.stdout.write(
    [
      `${opts.rows.toLocaleString('en-US')} companies${opts.repeat > 1 ? `, fastest of ${opts.repeat} runs each` : ''}`,
      line('companyctl import, PostgreSQL (reference)', reference),
      line('companyctl db copy SQLite -> PostgreSQL', copy),
      `copy / import: ${ratio.toFixed(2)}x (target >= ${TARGET}x: ${ratio >= TARGET ? 'met' : 'MISSED'})`,
    ].join('\n') + '\n',
  );
}

main().catch((e) => {
  process.stderr.write(`bench:copy: ${e.message}\n`);
  process.exitCode = 1;
});
