// Event dispatch benchmark: writes N companies (default 10,000), each in its own transaction
// with its outbox event (as N `company create` commands do), once with dispatch off (events
// stay in the outbox) and once with the dispatcher delivering after every commit to the
// audit-log, derived-count, cache and metrics handlers; the run with dispatch includes waiting
// until every event is delivered. Runs alternate on fresh SQLite stores in one process; the
// median ratio (dispatch on / off) is reported against the 1.10 target. A second, smaller
// measurement times cold `company create` processes with dispatch on and off.
//   npm run bench:events -- [--rows N] [--runs R] [--cli-runs C] [--json]
// It reports; it exits 1 only when a run fails, not when a target is missed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadWorkload } from './bench-lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'companyctl.js');
const TARGET = 1.1;
const PASSWORD = 'bench-horse-battery-9';

function options() {
  const { values } = parseArgs({
    options: { rows: { type: 'string' }, runs: { type: 'string' }, 'cli-runs': { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const int = (name, raw, min) => {
    const n = Number(String(raw).replace(/[_,]/g, ''));
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
  return {
    rows: int('rows', values.rows ?? process.env.BENCH_ROWS ?? 10_000, 1),
    runs: int('runs', values.runs ?? 5, 1),
    cliRuns: int('cli-runs', values['cli-runs'] ?? 15, 0),
    json: values.json,
  };
}

// The workload runs the services from source (bundled here), so it measures exactly the code
// the CLI runs after a command, without process start-up in the way.
const WORKLOAD = `
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { resolveStoreLocation } from './src/infra/db/location.js';
import { migrateStore, openStore } from './src/infra/db/store.js';
import { FileCache } from './src/infra/cache.js';
import { validateNewCompany } from './src/domain/validate.js';
import { createCompany } from './src/services/company.js';
import { Dispatcher, dispatchDue } from './src/services/dispatch.js';
import { dispatchDepsFor } from './src/services/events.js';
import { eventsSettings } from './src/services/events-settings.js';
import { deliveryCounts } from './src/infra/db/events-store.js';

const COUNTRIES = ['DE', 'FR', 'GB', 'US', 'NL', 'AT', 'CH', 'IT', 'ES', 'SE'];
const INDUSTRIES = ['Software', 'Food', 'Robotics', 'Logistics', 'Retail', null];

export function inputs(n) {
  return Array.from({ length: n }, (_, i) =>
    validateNewCompany({ name: 'Company ' + i, domain: 'company-' + i + '.example', country: COUNTRIES[i % 10], industry: INDUSTRIES[i % 6], employees: i % 5000, tags: i % 3 ? ['supplier'] : [] }),
  );
}

export async function run(dir, companies, dispatch) {
  const loc = resolveStoreLocation(undefined, join(dir, 'store.db'));
  await migrateStore(loc);
  const store = await openStore(loc);
  try {
    const cache = new FileCache(join(dir, 'cache'), loc.key);
    const now = () => new Date();
    const invalidated = new Set();
    const cdeps = { store: async () => store, cache, cacheTtlSeconds: 0, now, actor: 'bench', committed: (id) => invalidated.add(id) };
    const env = {
      store: async () => store, now, stateDir: join(dir, 'state'), settings: () => eventsSettings({}), cache, cacheTtlSeconds: 0,
      cacheDir: join(dir, 'cache', loc.key), actor: 'bench', promFile: () => join(dir, 'state', 'companyctl.prom'), log: () => {},
      cacheInvalidated: (id) => invalidated.has(id),
    };
    const deps = dispatch ? await dispatchDepsFor(env) : undefined;
    const dispatcher = deps ? new Dispatcher(deps) : undefined;
    const t0 = performance.now();
    for (const c of companies) {
      await createCompany(cdeps, c);
      dispatcher?.kick();
    }
    if (dispatcher) {
      await dispatcher.idle();
      if (dispatcher.error) throw dispatcher.error;
      await dispatchDue(deps);
    }
    const ms = performance.now() - t0;
    // Dispatch off: how long delivering the same events takes afterwards, in one drain.
    let drainMs = 0;
    if (!dispatch) {
      const t1 = performance.now();
      await dispatchDue(await dispatchDepsFor(env));
      drainMs = performance.now() - t1;
    }
    const counts = await deliveryCounts(store.read, { done: true });
    const auditLines = true ? readFileSync(join(dir, 'state', 'audit.log'), 'utf8').split('\\n').filter(Boolean).length : 0;
    return { ms, drainMs, counts, auditLines, batches: dispatcher?.runs ?? 0 };
  } finally {
    await store.close();
  }
}
`;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (n, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

async function inProcess(opts, tmp) {
  const w = await loadWorkload(WORKLOAD, 'events');
  const companies = w.inputs(opts.rows);
  const off = [];
  const on = [];
  const drains = [];
  const check = [];
  // Alternate, starting with a warm-up pair that is not counted (JIT, page cache).
  for (let i = -1; i < opts.runs; i++) {
    for (const dispatch of [false, true]) {
      const dir = mkdtempSync(join(tmp, dispatch ? 'on-' : 'off-'));
      const r = await w.run(dir, companies, dispatch);
      rmSync(dir, { recursive: true, force: true });
      if (r.auditLines !== companies.length || r.counts.pending !== 0 || r.counts.failed + r.counts.dead !== 0) {
        throw new Error(`run left work undone: ${JSON.stringify(r.counts)}, ${r.auditLines} audit lines for ${companies.length} events`);
      }
      if (dispatch) check.push(r.counts.done);
      if (i >= 0) (dispatch ? on : off).push(r.ms);
      if (i >= 0 && !dispatch) drains.push(r.drainMs);
      if (!opts.json) {
        const extra = dispatch ? ` (${r.batches} dispatch runs)` : ` (then one drain of them all: ${round(r.drainMs / 1000, 2)} s)`;
        process.stderr.write(`  ${i < 0 ? 'warm-up ' : ''}dispatch ${dispatch ? 'on ' : 'off'}: ${round(r.ms / 1000, 2)} s${extra}\n`);
      }
    }
  }
  const ratios = on.map((ms, i) => ms / off[i]);
  return {
    rows: opts.rows,
    runs: opts.runs,
    offMs: off.map((x) => round(x)),
    onMs: on.map((x) => round(x)),
    medianOffMs: round(median(off)),
    medianOnMs: round(median(on)),
    medianDrainMs: round(median(drains)),
    ratio: round(median(ratios), 3),
    target: TARGET,
    pass: median(ratios) <= TARGET,
    deliveriesPerRun: check[0],
  };
}

function cliRun(args, env, input) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [BIN, ...args], { env, input, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`companyctl ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`);
  return ms;
}

function perCommand(opts, tmp) {
  const result = {};
  for (const dispatch of [false, true]) {
    const home = mkdtempSync(join(tmp, 'cli-'));
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, COMPANYCTL_HOME: home, NO_COLOR: '1' };
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(join(home, 'config', 'config.json'), JSON.stringify({ events: { dispatchAfterCommand: dispatch } }));
    cliRun(['init', '--password-stdin'], env, PASSWORD);
    cliRun(['login', '-u', 'admin', '--password-stdin', '--insecure-storage', '--quiet'], env, PASSWORD);
    const times = [];
    for (let i = 0; i < opts.cliRuns + 3; i++) {
      const ms = cliRun(['company', 'create', '--name', `Cli ${i}`, '--domain', `cli-${i}.example`, '--quiet', '--json'], env, '');
      if (i >= 3) times.push(ms);
    }
    result[dispatch ? 'onMs' : 'offMs'] = round(median(times));
    rmSync(home, { recursive: true, force: true });
  }
  return { runs: opts.cliRuns, ...result, addedMs: round(result.onMs - result.offMs), ratio: round(result.onMs / result.offMs, 3) };
}

async function main() {
  const opts = options();
  const tmp = mkdtempSync(join(tmpdir(), 'companyctl-bench-events-'));
  try {
    if (!opts.json) process.stderr.write(`writing ${opts.rows.toLocaleString('en-US')} companies, ${opts.runs} runs each way (plus a warm-up pair)\n`);
    const workload = await inProcess(opts, tmp);
    const cli = opts.cliRuns > 0 ? perCommand(opts, tmp) : null;
    const report = { node: process.version, cpus: availableParallelism(), workload, cli };
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      const w = workload;
      process.stdout.write(
        `${w.rows.toLocaleString('en-US')}-company write workload (median of ${w.runs}): dispatch off ${round(w.medianOffMs / 1000, 2)} s, ` +
          `dispatch on ${round(w.medianOnMs / 1000, 2)} s (${w.deliveriesPerRun.toLocaleString('en-US')} deliveries); ` +
          `the same deliveries in one drain afterwards: ${round(w.medianDrainMs / 1000, 2)} s\n` +
          `dispatch overhead ratio: ${w.ratio} (target <= ${TARGET}: ${w.pass ? 'pass' : 'MISSED'})\n`,
      );
      if (cli) {
        process.stdout.write(`cold \`company create\` process (median of ${cli.runs}): dispatch off ${cli.offMs} ms, on ${cli.onMs} ms (+${cli.addedMs} ms, ratio ${cli.ratio})\n`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench-events: ${e.stack ?? e}\n`);
  process.exit(1);
});
