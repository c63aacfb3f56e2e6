// Import benchmark matrix: SQLite and PostgreSQL x key `domain` and `external:crm` x file
// sizes (default 200k and 1M rows) x fresh and re-run, each as a ratio to a reference
// measured in the same run on the same file:
//   SQLite     fresh and re-run: the sqlite3 shell's `.import` into a table with the same
//              columns and one unique key (the key column);
//   PostgreSQL fresh: `psql \copy` into the same table; re-run: `\copy` into a temp table,
//              then one INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE changed.
// Each cell takes the fastest of --repeat runs (the machine is noisy) and reports seconds,
// CPU seconds (user + system of the client process, all threads) and peak RSS.
//   npm run bench:import -- [--rows 200000,1000000] [--repeat 3] [--keys domain,external:crm]
//                           [--dialects sqlite,postgresql] [--pg-url URL] [--json] [--partial cells.jsonl]
// It reports; it exits 1 only when a run fails, not when a target is missed.
import { spawnSync } from 'node:child_process';
import { appendFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchDatabase } from './bench-lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'companyctl.js');
const CACHE_DIR = join(ROOT, '.bench');
const GENERATOR_VERSION = 2;
const PASSWORD = 'bench-horse-battery-9';
const TARGETS = { sqlite: { fresh: 0.6, rerun: 0.8 }, postgresql: { fresh: 0.5, rerun: 0.7 }, rssMb: 250 };

function options() {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: process.env.BENCH_ROWS ?? '200000,1000000' },
      repeat: { type: 'string', default: '3' },
      keys: { type: 'string', default: 'domain,external:crm' },
      dialects: { type: 'string', default: 'sqlite,postgresql' },
      json: { type: 'boolean', default: false },
      'pg-url': { type: 'string' },
      'no-pg': { type: 'boolean', default: false },
      partial: { type: 'string' },
    },
  });
  const list = (v) => String(v).split(',').map((x) => x.trim()).filter(Boolean);
  const rows = list(values.rows).map((r) => Number(r.replace(/[_]/g, '')));
  if (rows.some((r) => !Number.isInteger(r) || r < 1)) throw new Error(`--rows must be positive integers, got ${JSON.stringify(values.rows)}`);
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a positive integer, got ${JSON.stringify(values.repeat)}`);
  const keys = list(values.keys);
  for (const k of keys) if (k !== 'domain' && k !== 'external:crm') throw new Error(`--keys: ${k} is not domain or external:crm`);
  let dialects = list(values.dialects);
  for (const d of dialects) if (d !== 'sqlite' && d !== 'postgresql') throw new Error(`--dialects: ${d} is not sqlite or postgresql`);
  const pgUrl = values['no-pg'] ? undefined : (values['pg-url'] ?? process.env.COMPANYCTL_TEST_PG_URL);
  if (!pgUrl) dialects = dialects.filter((d) => d !== 'postgresql');
  return { rows, repeat, keys, dialects, json: values.json, pgUrl, partial: values.partial };
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

export const HEADER = ['name', 'domain', 'external_ids', 'country', 'city', 'postcode', 'address_line1', 'industry', 'employees', 'revenue_amount', 'revenue_currency', 'registration_country', 'registration_number', 'lei', 'tags', 'incorporation_date', 'status'];

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
  return [name, domain, `crm:${scrambled}`, country, city, String(10000 + Math.floor(r() * 89999)), street, INDUSTRY[Math.floor(r() * INDUSTRY.length)], employees, revenue, CURRENCY[country], hasReg ? country : '', regNo, lei, tags, date, 'active']
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
  // Flush what earlier runs left for the kernel to write, so no run pays for another's disk
  // writes: every run fsyncs its own checkpoints.
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

const keyColumn = (key) => (key === 'domain' ? 'domain' : 'external_ids');
const refColumns = (key) => HEADER.map((h) => (h === keyColumn(key) ? `${h} text unique` : `${h} text`)).join(', ');
const result = (r, rows) => ({ seconds: r.seconds, cpuSeconds: r.cpuSeconds, rowsPerSecond: Math.round(rows / r.seconds), peakRssMb: r.rssMb });

/** The sqlite3 shell's .import into a fresh table with the key column unique. */
function sqliteReference(file, rows, key) {
  const dir = mkdtempSync(join(tmpdir(), 'companyctl-bench-ref-'));
  try {
    const script = `pragma journal_mode=wal;\npragma synchronous=normal;\ncreate table company (${refColumns(key)});\n.mode csv\n.import --skip 1 ${file} company\nselect count(*) from company;\n`;
    const r = timed('/usr/bin/sqlite3', [join(dir, 'ref.db')], { input: script });
    const count = Number(r.stdout.trim().split('\n').pop());
    if (count !== rows) throw new Error(`sqlite3 .import loaded ${count} rows, expected ${rows}`);
    return result(r, rows);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** psql \copy into a fresh table (fresh), then \copy into a temp table + one upsert of what changed (re-run). */
async function pgReference(file, rows, key, url) {
  const db = await benchDatabase(url);
  try {
    const psql = (sql) => timed('/usr/bin/psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db.url], { input: sql });
    psql(`create table company (${refColumns(key)});`);
    const fresh = psql(`\\copy company from '${file}' with (format csv, header true)\n`);
    const k = keyColumn(key);
    const others = HEADER.filter((h) => h !== k);
    const rerun = psql(
      `begin;\ncreate temp table stage (like company) on commit drop;\n\\copy stage from '${file}' with (format csv, header true)\n` +
        `insert into company select * from stage on conflict (${k}) do update set ${others.map((h) => `${h} = excluded.${h}`).join(', ')}\n` +
        `  where (${others.map((h) => `company.${h}`).join(', ')}) is distinct from (${others.map((h) => `excluded.${h}`).join(', ')});\ncommit;\n`,
    );
    return { fresh: result(fresh, rows), rerun: result(rerun, rows) };
  } finally {
    await db.drop();
  }
}

function companyctl(args, env, input) {
  return spawnSync(process.execPath, [BIN, ...args], { env, input, encoding: 'utf8' });
}

function importRun(file, rows, key, env) {
  const r = timed(process.execPath, [BIN, 'import', file, '--key', key, '--json'], { env });
  const s = JSON.parse(r.stdout);
  if (s.rows !== rows || s.rejected !== 0) throw new Error(`import read ${s.rows} rows (${s.rejected} rejected), expected ${rows}: ${r.stdout}`);
  return { ...result(r, rows), inserted: s.inserted, updated: s.updated, unchanged: s.unchanged };
}

/** companyctl import into a new store, then the same file again (every row unchanged). */
async function companyctlRuns(file, rows, key, dialect, pgUrl) {
  const home = mkdtempSync(join(tmpdir(), 'companyctl-bench-import-'));
  const pg = dialect === 'postgresql' ? await benchDatabase(pgUrl) : undefined;
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, COMPANYCTL_HOME: home, NO_COLOR: '1', ...(pg ? { COMPANYCTL_DB: pg.url } : {}) };
  try {
    const init = companyctl(['init', '--password-stdin'], env, PASSWORD);
    if (init.status !== 0) throw new Error(`init failed: ${init.stderr}`);
    const login = companyctl(['login', '-u', 'admin', '--password-stdin', '--insecure-storage', '--quiet'], env, PASSWORD);
    if (login.status !== 0) throw new Error(`login failed: ${login.stderr}`);
    const fresh = importRun(file, rows, key, env);
    if (fresh.inserted !== rows) throw new Error(`the first import inserted ${fresh.inserted} of ${rows} rows`);
    const rerun = importRun(file, rows, key, env);
    if (rerun.inserted !== 0 || rerun.updated !== 0) throw new Error(`the re-import changed rows: ${JSON.stringify(rerun)}`);
    return { fresh, rerun };
  } finally {
    rmSync(home, { recursive: true, force: true });
    await pg?.drop();
  }
}

const fastest = (runs) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
const fastestCpu = (runs) => runs.reduce((a, b) => (b.cpuSeconds < a.cpuSeconds ? b : a));
const ratio = (x, ref) => Math.round((ref.seconds / x.seconds) * 100) / 100;

/** One cell: reference and companyctl alternating `repeat` times, the fastest of each kept. */
async function cell(file, rows, key, dialect, opts, say) {
  const refs = { fresh: [], rerun: [] };
  const runs = { fresh: [], rerun: [] };
  for (let i = 0; i < opts.repeat; i++) {
    say(`  ${dialect}, ${rows.toLocaleString('en-US')} rows, key ${key}: round ${i + 1} of ${opts.repeat}`);
    if (dialect === 'sqlite') {
      const ref = sqliteReference(file, rows, key);
      refs.fresh.push(ref);
      refs.rerun.push(ref);
    } else {
      const ref = await pgReference(file, rows, key, opts.pgUrl);
      refs.fresh.push(ref.fresh);
      refs.rerun.push(ref.rerun);
    }
    const r = await companyctlRuns(file, rows, key, dialect, opts.pgUrl);
    runs.fresh.push(r.fresh);
    runs.rerun.push(r.rerun);
  }
  const out = { dialect, rows, key, runs: opts.repeat };
  for (const phase of ['fresh', 'rerun']) {
    const ref = fastest(refs[phase]);
    const run = fastest(runs[phase]);
    // CPU ratio: the reference's CPU seconds over companyctl's (SQLite only: psql's work is the server's).
    const cpuRatio = dialect === 'sqlite' ? Math.round((fastestCpu(refs[phase]).cpuSeconds / fastestCpu(runs[phase]).cpuSeconds) * 100) / 100 : null;
    out[phase] = { reference: ref, companyctl: run, ratio: ratio(run, ref), cpuRatio, target: TARGETS[dialect][phase], peakRssMb: Math.max(...runs[phase].map((r) => r.peakRssMb)) };
  }
  return out;
}

async function main() {
  const opts = options();
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli.js'))) throw new Error('dist/src/cli.js is missing: run `npm run build` first');
  const say = (s) => process.stderr.write(`${s}\n`);
  const cells = [];
  for (const rows of opts.rows) {
    say(`generating ${rows.toLocaleString('en-US')} rows ...`);
    const file = await generate(rows);
    const bytes = statSync(file).size;
    say(`${file}: ${(bytes / 1e6).toFixed(0)} MB, ${Math.round(bytes / rows)} B/row`);
    for (const dialect of opts.dialects) {
      for (const key of opts.keys) {
        const c = await cell(file, rows, key, dialect, opts, say);
        cells.push(c);
        // A long matrix keeps what it has measured: one JSON line a finished cell.
        if (opts.partial) appendFileSync(opts.partial, `${JSON.stringify(c)}\n`);
      }
    }
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ repeat: opts.repeat, targets: TARGETS, cells }, null, 2)}\n`);
    return;
  }
  const out = [
    `fastest of ${opts.repeat} run(s) per cell; ratio = reference seconds / companyctl seconds; cpu = client user+system seconds (all threads);`,
    'cpu ratio = reference CPU / companyctl CPU (SQLite: both do all the work in the client process)',
    `${'store'.padEnd(10)} ${'rows'.padStart(9)} ${'key'.padEnd(12)} ${'run'.padEnd(6)} ${'reference'.padStart(16)} ${'companyctl'.padStart(16)} ${'cpu'.padStart(7)} ${'rss'.padStart(7)} ${'ratio'.padStart(6)} ${'cpu ratio'.padStart(9)}  target (wall ratio)`,
  ];
  for (const c of cells) {
    for (const phase of ['fresh', 'rerun']) {
      const p = c[phase];
      out.push(
        `${c.dialect.padEnd(10)} ${c.rows.toLocaleString('en-US').padStart(9)} ${c.key.padEnd(12)} ${phase.padEnd(6)} ${`${p.reference.seconds.toFixed(1)} s (cpu ${p.reference.cpuSeconds.toFixed(1)})`.padStart(16)} ${`${p.companyctl.seconds.toFixed(1)} s`.padStart(16)} ${`${p.companyctl.cpuSeconds.toFixed(1)} s`.padStart(7)} ${`${p.peakRssMb} MB`.padStart(7)} ${`${p.ratio.toFixed(2)}x`.padStart(6)} ${(p.cpuRatio === null ? '-' : `${p.cpuRatio.toFixed(2)}x`).padStart(9)}  >= ${p.target}x ${p.ratio >= p.target ? 'met' : 'MISSED'}`,
      );
    }
  }
  const peak = Math.max(...cells.flatMap((c) => [c.fresh.peakRssMb, c.rerun.peakRssMb]));
  out.push(`peak RSS: ${peak} MB (target <= ${TARGETS.rssMb} MB: ${peak <= TARGETS.rssMb ? 'met' : 'MISSED'})`);
  if (!opts.dialects.includes('postgresql')) out.push('PostgreSQL: skipped (no COMPANYCTL_TEST_PG_URL / --pg-url, or --no-pg)');
  process.stdout.write(`${out.join('\n')}\n`);
}

// Run only as a script: bench:copy imports the generator from here.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`bench:import: ${e.message}\n`);
    process.exitCode = 1;
  });
}
