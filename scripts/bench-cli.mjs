// Start-up benchmark for companyctl: cold-process wall time of a few commands against a
// store of N companies, compared with a bare `node -e 0`. Usage:
//   npm run bench:cli -- [--rows N] [--runs R] [--json]      (env BENCH_ROWS also sets N)
// It reports; it exits 1 only when a run fails, not when a target is missed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'companyctl.js');
const CACHE_DIR = join(ROOT, '.bench');
const WARMUPS = 3;
const BATCH = 50_000;
const GENERATOR_VERSION = 3; // bump when fillStore's values change, to retire cached stores

// Flags win over BENCH_ROWS; bad numbers stop the run before any work is done.
function options() {
  const { values } = parseArgs({ options: { rows: { type: 'string' }, runs: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const int = (name, raw) => {
    const n = Number(String(raw).replace(/[_,]/g, ''));
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    return n;
  };
  return { rows: int('rows', values.rows ?? process.env.BENCH_ROWS ?? 1_000_000), runs: int('runs', values.runs ?? 30), json: values.json };
}

// The benchmark measures the built CLI; building here would hide a stale or broken build.
function assertBuilt() {
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli.js'))) throw new Error('dist/src/cli.js is missing: run `npm run build` first');
}

// Every run sees only the throw-away home, never the user's store, config or cache.
function benchEnv(home) {
  const env = { ...process.env, COMPANYCTL_HOME: home };
  for (const k of ['COMPANYCTL_DB', 'COMPANYCTL_CONFIG', 'COMPANYCTL_CACHE_DIR', 'COMPANYCTL_STATE_DIR']) delete env[k];
  return env;
}

// One cold process, timed from spawn to exit; output is piped so the terminal costs nothing.
function timedRun(args, env, input) {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, env, input, stdio: 'pipe', encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.error || r.status !== 0) {
    throw new Error(`\`node ${args.join(' ')}\` failed (exit ${r.status ?? r.signal ?? r.error?.message}):\n${r.stderr || r.stdout}`);
  }
  return { ms, stdout: r.stdout, stderr: r.stderr };
}

// A `get --json` that printed some other company (or no JSON) must not count as a success.
function expectCompany(id) {
  return ({ stdout }) => {
    let doc;
    try {
      doc = JSON.parse(stdout);
    } catch {
      throw new Error(`expected JSON from company get, got: ${stdout.slice(0, 200)}`);
    }
    if ((doc.id ?? doc.company?.id) !== id) throw new Error(`expected company ${id}, got: ${stdout.slice(0, 200)}`);
  };
}

// Cached stores are keyed by row count, generator and schema, so a new migration refills.
function cachedStorePath(rows) {
  const dir = join(ROOT, 'src', 'infra', 'db', 'migrations');
  const hash = createHash('sha256').update(String(GENERATOR_VERSION));
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts')).sort()) hash.update(readFileSync(join(dir, f)));
  return join(CACHE_DIR, `companyctl-${rows}-${hash.digest('hex').slice(0, 12)}.db`);
}

// Deterministic, varied values: enough spread that rows look like real ones to SQLite.
const pick = (list, i) => list[i % list.length];
const PLACES = [
  ['DE', 'Berlin', 'BE', '10115', 'EUR'], ['DE', 'München', 'BY', '80331', 'EUR'], ['FR', 'Paris', 'IDF', '75002', 'EUR'],
  ['GB', 'London', 'ENG', 'EC1A 1BB', 'GBP'], ['US', 'Austin', 'TX', '73301', 'USD'], ['NL', 'Amsterdam', 'NH', '1012 AB', 'EUR'],
];
const WORDS = ['Northwind', 'Blue Harbor', 'Acme', 'Lindqvist', 'Orion', 'Kestrel', 'Greenfield', 'Atlas', 'Meridian', 'Sonnen'];
const KINDS = ['Logistics', 'Software', 'Foods', 'Energy', 'Textiles', 'Robotics', 'Consulting'];
const FORMS = { DE: 'GmbH', FR: 'SAS', GB: 'Ltd', US: 'Inc.', NL: 'B.V.' };
const TAGS = ['[]', '["customer"]', '["prospect"]', '["customer","key-account"]', '["supplier"]'];

// Bulk load straight into the SQLite file: one prepared INSERT, 50k rows per transaction.
function fillStore(file, rows) {
  const db = new Database(file, { fileMustExist: true });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const insert = db.prepare(`insert into company (id, name, legal_name, domain, website, registration_number,
    registration_country, lei, industry, employees, revenue_amount, revenue_currency, address_line1, address_line2,
    city, region, postcode, country, status, incorporation_date, tags, version, created_at, updated_at, deleted_at)
    values (?, ?, ?, ?, ?, ?, ?, null, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null)`);
  const batch = db.transaction((from, to) => {
    for (let i = from; i < to; i++) {
      const [country, city, region, postcode, currency] = pick(PLACES, i);
      const kind = pick(KINDS, Math.floor(i / 10));
      const name = `${pick(WORDS, i * 7)} ${kind} ${i}`;
      const created = Date.UTC(2020, 0, 1) + (i % 2_000) * 86_400_000 + (i % 86_400) * 1000;
      const version = 1 + (i % 3); // each later version moved updated_at on by 30 days
      insert.run(i, name, `${name} ${FORMS[country]}`, `company-${i}.example`, `https://company-${i}.example`,
        `HRB ${100_000 + i}`, country, kind.toLowerCase(), 5 + ((i * 37) % 5_000), `${(i * 7919) % 90_000_000 + 100_000}.50`,
        currency, `${1 + (i % 200)} ${pick(WORDS, i)} Street`, i % 5 === 0 ? `Floor ${i % 12}` : null, city, region, postcode,
        country, i % 20 === 0 ? 'dormant' : i % 50 === 1 ? 'dissolved' : 'active',
        `${1950 + (i % 70)}-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`,
        pick(TAGS, i), version, new Date(created).toISOString(),
        new Date(created + (version - 1) * 30 * 86_400_000).toISOString());
    }
  });
  for (let from = 1; from <= rows; from += BATCH) batch(from, Math.min(from + BATCH, rows + 1));
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

// The throw-away admin's password (the same for cached stores, which keep their users).
const PASSWORD = 'bench-password-not-secret';

// `init` makes the schema; then the rows come from the cache when possible, else a fresh load;
// then a login whose token goes to a 0600 file (the headless path: no keychain involved).
function prepareStore(env, home, rows) {
  timedRun([BIN, 'init', '--password-stdin'], env, PASSWORD);
  try {
    fillOrCopy(home, rows);
  } finally {
    timedRun([BIN, 'login', '-u', 'admin', '--password-stdin', '--insecure-storage', '--quiet'], env, PASSWORD);
  }
}

function fillOrCopy(home, rows) {
  const db = join(home, 'data', 'companyctl.db');
  const cached = cachedStorePath(rows);
  const t0 = performance.now();
  if (existsSync(cached)) {
    for (const f of [`${db}-wal`, `${db}-shm`]) rmSync(f, { force: true }); // a stale WAL would corrupt the copy
    copyFileSync(cached, db);
    process.stderr.write(`store: copied ${rows.toLocaleString('en')} cached rows in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    return;
  }
  fillStore(db, rows);
  process.stderr.write(`store: loaded ${rows.toLocaleString('en')} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  mkdirSync(CACHE_DIR, { recursive: true });
  copyFileSync(db, `${cached}.tmp`);
  renameSync(`${cached}.tmp`, cached);
}

// Round-robin over the commands so a noisy moment hits all of them alike, not one.
function measure(cases, env, runs) {
  for (let w = 0; w < WARMUPS; w++) for (const c of cases) c.check?.(timedRun(c.args, env));
  const times = new Map(cases.map((c) => [c, []]));
  for (let r = 0; r < runs; r++) {
    for (const c of cases) {
      const result = timedRun(c.args, env);
      c.check?.(result);
      times.get(c).push(result.ms);
    }
  }
  return times;
}

// Nearest-rank percentile of a sample: no interpolation, so p50 and p90 are real runs.
function percentile(samples, p) {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

// One row per command; the reference row gets ratio 1 and no target.
function summarise(cases, times) {
  const base = percentile(times.get(cases[0]), 50);
  return cases.map((c) => {
    const median = percentile(times.get(c), 50);
    const ratio = median / base;
    return { command: c.label, medianMs: +median.toFixed(1), p90Ms: +percentile(times.get(c), 90).toFixed(1),
      ratio: +ratio.toFixed(2), target: c.target ?? null, pass: c.target ? ratio <= c.target : null };
  });
}

// Plain fixed-width table: readable in a terminal and pasteable into a note.
function printTable(results, meta) {
  const rows = [['command', 'median ms', 'p90 ms', 'ratio', 'target', 'result'],
    ...results.map((r) => [r.command, r.medianMs.toFixed(1), r.p90Ms.toFixed(1), `${r.ratio.toFixed(2)}x`,
      r.target ? `<= ${r.target}x` : '-', r.pass === null ? 'reference' : r.pass ? 'PASS' : 'FAIL'])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
  console.log(`\n${meta.rows.toLocaleString('en')} rows, ${meta.runs} runs each (after ${WARMUPS} warm-ups), node ${meta.node}, ${meta.cpus} CPUs`);
}

// Set up, measure, report; the temp home goes away whatever happens.
function main() {
  const opts = options();
  assertBuilt();
  const home = mkdtempSync(join(tmpdir(), 'companyctl-bench-'));
  const cleanup = () => rmSync(home, { recursive: true, force: true });
  process.once('SIGINT', () => { cleanup(); process.exit(130); });
  try {
    const env = benchEnv(home);
    prepareStore(env, home, opts.rows);
    const id = Math.max(1, Math.floor(opts.rows / 2));
    const get = [BIN, 'company', 'get', String(id), '--json'];
    timedRun(get, env); // fills the file cache for the cache-hit case
    const hit = timedRun([...get, '--verbose'], env);
    if (!/from the file cache/.test(hit.stderr)) throw new Error(`expected a cache hit, stderr was: ${hit.stderr}`);
    const cases = [
      { label: 'node -e 0', args: ['-e', '0'] },
      { label: 'companyctl --help', args: [BIN, '--help'], target: 1.5 },
      { label: `company get ${id} --json (cache hit)`, args: get, target: 2, check: expectCompany(id) },
      { label: `company get ${id} --json --fresh`, args: [...get, '--fresh'], target: 4, check: expectCompany(id) },
    ];
    process.stderr.write(`measuring: ${WARMUPS} warm-ups + ${opts.runs} runs of ${cases.length} commands\n`);
    const results = summarise(cases, measure(cases, env, opts.runs));
    const meta = { rows: opts.rows, runs: opts.runs, node: process.version, cpus: availableParallelism() };
    if (opts.json) console.log(JSON.stringify({ ...meta, warmups: WARMUPS, results }, null, 2));
    else printTable(results, meta);
  } finally {
    cleanup();
  }
}

try {
  main();
} catch (e) {
  process.stderr.write(`bench-cli: ${e.message}\n`);
  process.exitCode = 1;
}
