// Import benchmark: generates N realistic company rows (CSV, quoted fields, ~150 bytes a
// row), times the sqlite3 shell's `.import` of the same file into a table with the same
// unique key as the reference, then `companyctl import` (full validation) on a fresh SQLite
// store and again on the same store (every row unchanged), and reports rows/s, the ratios
// to the reference and the peak RSS of each run. With a PostgreSQL server
// (COMPANYCTL_TEST_PG_URL or --pg-url) the same two imports run there too.
//   npm run bench:import -- [--rows N] [--repeat R] [--json] [--pg-url URL] [--no-pg]
// With --repeat R (default 1) the reference and the SQLite runs alternate R times and each
// reports its fastest run: this machine's speed drifts by 20% from minute to minute.
// It reports; it exits 1 only when a run fails, not when a target is missed.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'companyctl.js');
const CACHE_DIR = join(ROOT, '.bench');
const GENERATOR_VERSION = 1;
const PASSWORD = 'bench-horse-battery-9';
const TARGETS = { fresh: 0.5, rerun: 0.7, rssMb: 250 };

function options() {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      repeat: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      'pg-url': { type: 'string' },
      'no-pg': { type: 'boolean', default: false },
    },
  });
  const rows = Number(String(values.rows ?? process.env.BENCH_ROWS ?? 1_000_000).replace(/[_,]/g, ''));
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`--rows must be a positive integer, got ${JSON.stringify(values.rows)}`);
  const pgUrl = values['no-pg'] ? undefined : (values['pg-url'] ?? process.env.COMPANYCTL_TEST_PG_URL);
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a positive integer, got ${JSON.stringify(values.repeat)}`);
  return { rows, repeat, json: values.json, pgUrl };
}

// ---------------------------------------------------------------- data

/** Deterministic PRNG (mulberry32), so every run imports the same file. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mod97(s) {
  let rem = 0;
  for (const ch of s) {
    const code = ch.charCodeAt(0);
    const digits = code >= 65 ? String(code - 55) : ch;
    for (const d of digits) rem = (rem * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rem;
}

const WORDS = ['Acme', 'Globex', 'Initech', 'Umbrella', 'Stark', 'Wayne', 'Hooli', 'Vandelay', 'Soylent', 'Tyrell', 'Cyberdyne', 'Wonka', 'Gringotts', 'Oscorp', 'Aperture', 'Nakatomi', 'Massive', 'Dynamic', 'Blue', 'North', 'Alpen', 'Rhein', 'Baltic', 'Nordic'];
const SUFFIX = ['GmbH', 'AG', 'Ltd', 'Inc.', 'S.A.', 'B.V.', 'SE', 'KG', 'Oy', 'AB'];
const INDUSTRY = ['robotics', 'software', 'logistics', 'retail', 'banking', 'insurance', 'chemicals', 'automotive', 'energy', 'media'];
const CITIES = [['DE', 'Berlin'], ['DE', 'München'], ['FR', 'Paris'], ['GB', 'London'], ['US', 'New York'], ['NL', 'Amsterdam'], ['SE', 'Stockholm'], ['ES', 'Madrid'], ['IT', 'Milano'], ['AT', 'Wien']];
const TLD = { DE: 'de', FR: 'fr', GB: 'co.uk', US: 'com', NL: 'nl', SE: 'se', ES: 'es', IT: 'it', AT: 'at' };
const TAGS = ['supplier', 'customer', 'partner', 'eu', 'priority', 'prospect'];
const CURRENCY = { DE: 'EUR', FR: 'EUR', GB: 'GBP', US: 'USD', NL: 'EUR', SE: 'SEK', ES: 'EUR', IT: 'EUR', AT: 'EUR' };

export const HEADER = ['name', 'domain', 'country', 'city', 'postcode', 'address_line1', 'industry', 'employees', 'revenue_amount', 'revenue_currency', 'registration_country', 'registration_number', 'lei', 'tags', 'incorporation_date', 'status'];

const q = (s) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

/** One row; `i` makes every key unique, in a random-looking order. */
function row(i, r) {
  const scrambled = (Math.imul(i, 2654435761) >>> 0).toString(36);
  const w1 = WORDS[Math.floor(r() * WORDS.length)];
  const w2 = WORDS[Math.floor(r() * WORDS.length)];
  const [country, city] = CITIES[Math.floor(r() * CITIES.length)];
  const name = r() < 0.34 ? `${w1}, ${w2} & Co ${SUFFIX[Math.floor(r() * SUFFIX.length)]}` : `${w1} ${w2} ${SUFFIX[Math.floor(r() * SUFFIX.length)]}`;
  const domain = `${w1.toLowerCase()}-${scrambled}.${TLD[country]}`;
  const employees = String(Math.floor(r() * 50_000));
  const revenue = `${Math.floor(r() * 90_000_000)}.${String(Math.floor(r() * 100)).padStart(2, '0')}`;
  const hasReg = r() < 0.6;
  const regNo = hasReg ? `HRB ${scrambled.toUpperCase()}${i % 10}` : '';
  let lei = '';
  if (r() < 0.2) {
    const prefix = `5299${String(i).padStart(14, '0')}`;
    lei = prefix + String(98 - mod97(`${prefix}00`)).padStart(2, '0');
  }
  const tags = r() < 0.5 ? `${TAGS[Math.floor(r() * TAGS.length)]};${TAGS[Math.floor(r() * TAGS.length)]}` : '';
  const year = 1950 + Math.floor(r() * 70);
  const date = `${year}-${String(1 + Math.floor(r() * 12)).padStart(2, '0')}-${String(1 + Math.floor(r() * 28)).padStart(2, '0')}`;
  const street = `${Math.floor(r() * 200) + 1} ${w2}str.`;
  return [name, domain, country, city, String(10000 + Math.floor(r() * 89999)), street, INDUSTRY[Math.floor(r() * INDUSTRY.length)], employees, revenue, CURRENCY[country], hasReg ? country : '', regNo, lei, tags, date, 'active']
    .map(q)
    .join(',');
}

/** The benchmark's CSV of `rows` companies (cached in .bench/); bench:copy imports the same file. */
export async function generate(rows) {
  mkdirSync(CACHE_DIR, { recursive: true });
  const file = join(CACHE_DIR, `import-${rows}-v${GENERATOR_VERSION}.csv`);
  if (existsSync(file)) return file;
  const tmp = `${file}.tmp`;
  const out = createWriteStream(tmp);
  const r = rng(42);
  out.write(`${HEADER.join(',')}\n`);
  let buf = [];
  for (let i = 1; i <= rows; i++) {
    buf.push(row(i, r));
    if (buf.length === 10_000) {
      if (!out.write(`${buf.join('\n')}\n`)) await once(out, 'drain');
      buf = [];
    }
  }
  if (buf.length) out.write(`${buf.join('\n')}\n`);
  out.end();
  await once(out, 'finish');
  const { renameSync } = await import('node:fs');
  renameSync(tmp, file);
  return file;
}

// ---------------------------------------------------------------- runs

/** Run a command, timing it and sampling its peak RSS (GNU time's %M, in KiB). */
function timed(cmd, args, opts = {}) {
  // Flush what earlier runs left for the kernel to write (the reference's 300 MB database),
  // so no run pays for another's disk writes: every run fsyncs its own checkpoints.
  spawnSync('sync');
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const lines = (r.stderr ?? '').trim().split('\n');
  const [rssKb, user, sys] = lines[lines.length - 1].split(' ').map(Number);
  if (r.status !== 0 && r.status !== 3) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}\n${r.stdout}`);
  // CPU seconds (user + system, all threads): steadier than wall time on a busy machine.
  return { seconds, cpuSeconds: Math.round((user + sys) * 100) / 100, rssMb: Math.round(rssKb / 1024), stdout: r.stdout, stderr: r.stderr, status: r.status };
}

function reference(file, rows) {
  const dir = mkdtempSync(join(tmpdir(), 'companyctl-bench-ref-'));
  try {
    const db = join(dir, 'ref.db');
    const cols = HEADER.map((h) => (h === 'domain' ? 'domain text unique' : `${h} text`)).join(', ');
    const script = `pragma journal_mode=wal;\npragma synchronous=normal;\ncreate table company (${cols});\n.mode csv\n.import --skip 1 ${file} company\nselect count(*) from company;\n`;
    const r = timed('/usr/bin/sqlite3', [db], { input: script });
    const count = Number(r.stdout.trim().split('\n').pop());
    if (count !== rows) throw new Error(`sqlite3 .import loaded ${count} rows, expected ${rows}`);
    return { seconds: r.seconds, cpuSeconds: r.cpuSeconds, rowsPerSecond: Math.round(rows / r.seconds), peakRssMb: r.rssMb };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function companyctl(args, env, input) {
  return spawnSync(process.execPath, [BIN, ...args], { env, input, encoding: 'utf8' });
}

function importRun(file, rows, env) {
  const r = timed(process.execPath, [BIN, 'import', file, '--json'], { env });
  const s = JSON.parse(r.stdout);
  if (s.rows !== rows) throw new Error(`import read ${s.rows} rows, expected ${rows}`);
  return { seconds: r.seconds, cpuSeconds: r.cpuSeconds, rowsPerSecond: Math.round(rows / r.seconds), peakRssMb: r.rssMb, inserted: s.inserted, updated: s.updated, unchanged: s.unchanged, rejected: s.rejected };
}

async function storeRuns(file, rows, db) {
  const home = mkdtempSync(join(tmpdir(), 'companyctl-bench-import-'));
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, COMPANYCTL_HOME: home, NO_COLOR: '1', ...(db ? { COMPANYCTL_DB: db } : {}) };
  try {
    const init = companyctl(['init', '--password-stdin'], env, PASSWORD);
    if (init.status !== 0) throw new Error(`init failed: ${init.stderr}`);
    const login = companyctl(['login', '-u', 'admin', '--password-stdin', '--insecure-storage', '--quiet'], env, PASSWORD);
    if (login.status !== 0) throw new Error(`login failed: ${login.stderr}`);
    const fresh = importRun(file, rows, env);
    const rerun = importRun(file, rows, env);
    if (rerun.inserted !== 0 || rerun.updated !== 0) throw new Error(`the re-import changed rows: ${JSON.stringify(rerun)}`);
    return { fresh, rerun };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

async function pgDatabase(url) {
  const { default: pg } = await import('pg');
  const name = `companyctl_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`drop database if exists ${name}`);
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(url);
  u.pathname = `/${name}`;
  return {
    url: u.href,
    drop: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

async function main() {
  const opts = options();
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli.js'))) throw new Error('dist/src/cli.js is missing: run `npm run build` first');
  const say = (s) => opts.json || process.stderr.write(`${s}\n`);
  say(`generating ${opts.rows.toLocaleString('en-US')} rows ...`);
  const file = await generate(opts.rows);
  const bytes = statSync(file).size;
  say(`${file}: ${(bytes / 1e6).toFixed(0)} MB, ${Math.round(bytes / opts.rows)} B/row`);
  say('reference: sqlite3 shell .import, then companyctl ...');
  const fastest = (runs) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const refs = [];
  const fresh = [];
  const rerun = [];
  for (let i = 0; i < opts.repeat; i++) {
    refs.push(reference(file, opts.rows));
    say(`companyctl import on SQLite (fresh, then re-run)${opts.repeat > 1 ? `, round ${i + 1} of ${opts.repeat}` : ''} ...`);
    const r = await storeRuns(file, opts.rows);
    fresh.push(r.fresh);
    rerun.push(r.rerun);
  }
  const ref = fastest(refs);
  const sqlite = { fresh: fastest(fresh), rerun: fastest(rerun) };
  let postgres;
  if (opts.pgUrl) {
    say('companyctl import on PostgreSQL (fresh, then re-run) ...');
    const pg = await pgDatabase(opts.pgUrl);
    try {
      postgres = await storeRuns(file, opts.rows, pg.url);
    } finally {
      await pg.drop();
    }
  }
  const ratio = (x) => Math.round((x.rowsPerSecond / ref.rowsPerSecond) * 100) / 100;
  const result = {
    rows: opts.rows,
    repeat: opts.repeat,
    bytesPerRow: Math.round(bytes / opts.rows),
    reference: ref,
    sqlite: { ...sqlite, freshRatio: ratio(sqlite.fresh), rerunRatio: ratio(sqlite.rerun) },
    postgres: postgres ? { ...postgres, freshRatio: ratio(postgres.fresh), rerunRatio: ratio(postgres.rerun) } : null,
    targets: TARGETS,
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const line = (label, r, ratioValue, target) =>
    `${label.padEnd(34)} ${r.seconds.toFixed(1).padStart(7)} s (cpu ${r.cpuSeconds.toFixed(1).padStart(5)} s) ${r.rowsPerSecond.toLocaleString('en-US').padStart(10)} rows/s ${String(r.peakRssMb).padStart(5)} MB` +
    (ratioValue === undefined ? '' : `   ${ratioValue.toFixed(2)}x ref (target >= ${target}x: ${ratioValue >= target ? 'met' : 'MISSED'})`);
  const out = [
    `${opts.rows.toLocaleString('en-US')} rows, ${result.bytesPerRow} B/row${opts.repeat > 1 ? `, fastest of ${opts.repeat} runs each` : ''}`,
    line('sqlite3 shell .import (reference)', ref),
    line('companyctl import, SQLite, fresh', sqlite.fresh, result.sqlite.freshRatio, TARGETS.fresh),
    line('companyctl import, SQLite, re-run', sqlite.rerun, result.sqlite.rerunRatio, TARGETS.rerun),
  ];
  if (postgres) {
    out.push(line('companyctl import, PostgreSQL, fresh', postgres.fresh, result.postgres.freshRatio, TARGETS.fresh));
    out.push(line('companyctl import, PostgreSQL, re-run', postgres.rerun, result.postgres.rerunRatio, TARGETS.rerun));
  } else {
    out.push('PostgreSQL: skipped (no COMPANYCTL_TEST_PG_URL / --pg-url)');
  }
  const peak = Math.max(...fresh.map((r) => r.peakRssMb), ...rerun.map((r) => r.peakRssMb));
  out.push(`peak RSS on SQLite: ${peak} MB (target <= ${TARGETS.rssMb} MB: ${peak <= TARGETS.rssMb ? 'met' : 'MISSED'})`);
  process.stdout.write(`${out.join('\n')}\n`);
}

// Run only as a script: bench:copy imports the generator from here.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`bench:import: ${e.message}\n`);
    process.exitCode = 1;
  });
}
