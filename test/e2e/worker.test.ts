// `companyctl worker` end to end, as separate processes: continuous event delivery (a write
// command leaves its events to a live worker), cache sync across two homes sharing one
// PostgreSQL store, how long `company get` trusts its cache with and without a live worker,
// SIGTERM, a lost store connection (through a TCP proxy the test owns), and SQLite polling.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, BIN, bootstrapBin, freshPgDatabase, hasScript, PG_SKIP_REASON, PG_URL, runBin, runBinAsync, runInProcess, tempHome } from '../helpers.js';
import { byDomain, enrichConfig, startApi } from '../../fixtures/enrich/server.js';
import { eventually, startWorker, TcpProxy, type WorkerProcess } from '../worker-helpers.js';

const FAST = { worker: { leaseSeconds: 3, heartbeatSeconds: 0.5 } };

function writeConfig(home: string, config: object): void {
  mkdirSync(join(home, 'config'), { recursive: true });
  writeFileSync(join(home, 'config', 'config.json'), JSON.stringify(config));
}

function editorToken(env: Record<string, string>, name: string): string {
  const r = runBin(['token', 'create', '--name', name, '--role', 'editor', '--quiet'], { env });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

/** The audit log's company lines (init, login and token create are audited too). */
const auditLines = (home: string) =>
  readFileSync(join(home, 'state', 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { eventId: number; action: string })
    .filter((l) => l.action.startsWith('company.'));

const delivered = (w: WorkerProcess) => w.lines().filter((l) => l.msg === 'delivered').reduce((n, l) => n + Number(l.delivered), 0);

describe.skipIf(!PG_URL)(`companyctl worker on PostgreSQL${PG_URL ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
  let a: ReturnType<typeof tempHome>;
  let b: ReturnType<typeof tempHome>;
  let pgDb: Awaited<ReturnType<typeof freshPgDatabase>>;
  let envA: Record<string, string>;
  let envB: Record<string, string>;
  const workers: WorkerProcess[] = [];
  const proxy = new TcpProxy('127.0.0.1', Number(new URL(PG_URL ?? 'postgresql://x@127.0.0.1:5432/').port || 5432));

  beforeAll(async () => {
    a = tempHome();
    b = tempHome();
    pgDb = await freshPgDatabase();
    envA = { COMPANYCTL_HOME: a.home, COMPANYCTL_DB: pgDb.url };
    envB = { COMPANYCTL_HOME: b.home, COMPANYCTL_DB: pgDb.url };
    writeConfig(a.home, FAST);
    writeConfig(b.home, { ...FAST, cacheTtlSeconds: 1 });
    bootstrapBin(envA);
    const login = runBin(['login', '-u', 'admin', '--password-stdin', '--insecure-storage', '--quiet'], { env: envB, input: ADMIN_PASSWORD });
    expect(login.code, login.stderr).toBe(0);
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await proxy.close();
    await pgDb?.cleanup();
    a?.cleanup();
    b?.cleanup();
  });

  const spawnWorker = (env: Record<string, string>, args: string[] = []) => {
    const w = startWorker(env, args);
    workers.push(w);
    return w;
  };
  const getB = (ref: string) => {
    const r = runBin(['company', 'get', ref, '--json', '--verbose'], { env: envB });
    return { code: r.code, company: r.code === 0 ? (JSON.parse(r.stdout) as { version: number; employees: number | null }) : undefined, cached: r.stderr.includes('from the file cache') };
  };

  it('delivers the events of write commands as they commit; the commands leave them to it', async () => {
    const w = spawnWorker({ ...envA, COMPANYCTL_TOKEN: editorToken(envA, 'worker-a') });
    await w.waitFor((l) => l.msg === 'listening for changes');
    for (const [name, domain] of [
      ['Acme', 'acme.de'],
      ['Globex', 'globex.com'],
      ['Initech', 'initech.com'],
    ]) {
      expect(runBin(['company', 'create', '--name', name!, '--domain', domain!], { env: envA }).code).toBe(0);
    }
    // Four handlers (audit, derived, cache, metrics) per event, every one by the worker.
    await eventually(() => delivered(w) === 12);
    expect(auditLines(a.home).map((l) => l.action)).toEqual(['company.created', 'company.created', 'company.created']);
    const pending = JSON.parse(runBin(['events', 'list', '--pending', '--json'], { env: envA }).stdout);
    expect(pending.items).toEqual([]);
    const status = await eventually(() => {
      const s = JSON.parse(runBin(['worker', 'status', '--json'], { env: envA }).stdout) as { pid: number; alive: boolean; eventsDelivered: number }[];
      return s.find((x) => x.pid === w.child.pid && x.eventsDelivered === 12) ? s : undefined;
    });
    expect(status).toEqual([expect.objectContaining({ pid: w.child.pid, alive: true, state: 'running', holds: [] })]);
    const prom = readFileSync(join(a.home, 'state', 'companyctl.prom'), 'utf8');
    expect(prom).toMatch(/^companyctl_events_oldest_pending_seconds \d/m);
    expect(prom).toMatch(/^companyctl_worker_heartbeat_timestamp_seconds \d+/m);
  });

  it("another host's write reaches this host's cache at once, refilled (still a hit)", async () => {
    const wb = spawnWorker({ ...envB, COMPANYCTL_TOKEN: editorToken(envA, 'worker-b') });
    await wb.waitFor((l) => l.msg === 'listening for changes');
    expect(getB('acme.de')).toMatchObject({ code: 0, cached: false });
    expect(getB('acme.de')).toMatchObject({ code: 0, cached: true, company: { version: 1 } });
    expect(runBin(['company', 'update', 'acme.de', '--employees', '7'], { env: envA }).code).toBe(0);
    // B never reads the store for it: its worker cached version 2 when A committed.
    const seen = await eventually(() => {
      const g = getB('acme.de');
      return g.company?.version === 2 ? g : undefined;
    }, 10_000, 50);
    expect(seen).toMatchObject({ cached: true, company: { employees: 7 } });

    expect(runBin(['company', 'delete', 'acme.de'], { env: envA }).code).toBe(0);
    // A deleted company leaves B's cache at once: the store is asked, and says so.
    await eventually(() => getB('1').code === 1, 10_000, 50);
    await eventually(async () => {
      const prom = readFileSync(join(b.home, 'state', 'companyctl.prom'), 'utf8');
      return /^companyctl_worker_cache_refills_total [1-9]/m.test(prom) && /^companyctl_worker_cache_drops_total [1-9]/m.test(prom);
    });
  });

  it('trusts the cache past its TTL only while the worker listens; SIGTERM stops it with exit 0 within 10 s', async () => {
    // B's cacheTtlSeconds is 1; its worker from the test before still runs.
    expect(getB('globex.com')).toMatchObject({ code: 0 });
    await new Promise((r) => setTimeout(r, 2_000));
    expect(getB('globex.com')).toMatchObject({ code: 0, cached: true });

    const wb = workers[1]!;
    const stopped = await wb.stop('SIGTERM');
    expect(stopped).toMatchObject({ code: 0, signal: null });
    expect(stopped.ms).toBeLessThan(10_000);
    expect(wb.lines().at(-1)).toMatchObject({ msg: 'stopped' });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(getB('globex.com')).toMatchObject({ code: 0, cached: false });
    const all = JSON.parse(runBin(['worker', 'status', '--all', '--json'], { env: envB }).stdout) as { pid: number; alive: boolean; state: string }[];
    expect(all.find((x) => x.pid === wb.child.pid)).toMatchObject({ alive: false, state: 'stopped' });
  });

  it('a lost store connection is reconnected with backoff; nothing is lost or delivered twice', async () => {
    const port = await proxy.start();
    const url = new URL(pgDb.url);
    url.port = String(port);
    const w = spawnWorker({ ...envA, COMPANYCTL_DB: url.href, COMPANYCTL_TOKEN: editorToken(envA, 'worker-p') });
    await w.waitFor((l) => l.msg === 'listening for changes');
    await proxy.cut();
    await w.waitFor((l) => l.level === 'error' && /notification connection lost/.test(l.msg));
    // Written while the worker cannot reach the store (directly, not through the proxy); its
    // heartbeat is still within the lease, so the command leaves the events to it.
    expect(runBin(['company', 'create', '--name', 'Hooli', '--domain', 'hooli.com'], { env: envA }).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1_000));
    await proxy.start(port);
    await w.waitFor((l) => l.msg === 'listening for changes' && w.lines().filter((x) => x.msg === 'listening for changes').length >= 2, 30_000);
    await eventually(() => auditLines(a.home).some((l) => l.action === 'company.created' && JSON.stringify(l).includes('"Hooli"')));
    await eventually(() => JSON.parse(runBin(['events', 'list', '--pending', '--json'], { env: envA }).stdout).items.length === 0);
    const ids = auditLines(a.home).map((l) => l.eventId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(w.child.exitCode).toBeNull();
  });

  it('worker status on a terminal, without one, and as JSON', async () => {
    const tty = await runInProcess(['worker', 'status', '--all'], envA, { tty: true });
    expect(tty.code).toBe(0);
    expect(tty.stdout).toMatch(/^host\s+pid/m);
    const plain = await runInProcess(['worker', 'status', '--all'], envA);
    expect(plain.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(2);
    expect(plain.stdout).toMatch(/\t(alive|gone)\t/);
    const json = await runInProcess(['worker', 'status', '--all', '--json'], envA);
    expect(JSON.parse(json.stdout)[0]).toMatchObject({ host: expect.any(String), pid: expect.any(Number), alive: expect.any(Boolean) });
  });
});

describe('companyctl worker on SQLite', () => {
  let home: ReturnType<typeof tempHome>;
  let env: Record<string, string>;
  beforeAll(() => {
    home = tempHome();
    env = { COMPANYCTL_HOME: home.home };
    writeConfig(home.home, FAST);
    bootstrapBin(env);
  });
  afterAll(() => home?.cleanup());

  it('polls: the events of a write are delivered by the worker; --json prints its summary at exit', async () => {
    const w = startWorker(env, ['--json']);
    try {
      await w.waitFor((l) => l.msg === 'started');
      expect(runBin(['company', 'create', '--name', 'Acme', '--domain', 'acme.de'], { env }).code).toBe(0);
      await eventually(() => delivered(w) === 4);
      expect(auditLines(home.home)).toHaveLength(1);
    } finally {
      const s = await w.stop('SIGINT');
      expect(s.code).toBe(0);
    }
    expect(JSON.parse(w.stdout())).toMatchObject({ delivered: 4, jobsRun: 0, abandoned: false });
  });

  it('a write command delivers its own events when no worker is alive', () => {
    expect(runBin(['company', 'create', '--name', 'Globex', '--domain', 'globex.com'], { env }).code).toBe(0);
    expect(auditLines(home.home)).toHaveLength(2);
  });

  it('enrich --queue: checks the selection, queues it; the worker runs it with its host\'s API settings; import wait gives its exit code', async () => {
    const api = await startApi(byDomain);
    try {
      writeConfig(home.home, { ...FAST, enrich: enrichConfig(api.url, { concurrency: 1 }) });
      const bad = runBin(['enrich', '--ids', 'x', '--queue', '--json'], { env });
      expect(bad.code).toBe(2);
      expect(JSON.parse(bad.stderr).error).toMatchObject({ code: 'COMPANYCTL_USAGE', field: '--ids' });
      const q = runBin(['enrich', '--ids', '1', '--queue', '--json'], { env });
      expect(q.code, q.stderr).toBe(0);
      const { jobId, state } = JSON.parse(q.stdout);
      expect(state).toBe('queued');
      expect(api.requests).toHaveLength(0);
      const w = startWorker({ ...env, TEST_ENRICH_KEY: 'k-123' });
      try {
        const wait = await runBinAsync(['import', 'wait', String(jobId), '--timeout', '2m', '--json'], { env });
        expect(wait.code, wait.stderr).toBe(0);
        expect(JSON.parse(wait.stdout)).toMatchObject({ jobId, state: 'completed', exitCode: 0, enriched: 1, enrichRun: expect.any(Number) });
        expect(api.requests.length).toBeGreaterThan(0);
        const c = JSON.parse(runBin(['company', 'get', '1', '--fresh', '--json'], { env }).stdout);
        expect(c.legalName).not.toBeNull();
      } finally {
        await w.stop();
      }
    } finally {
      writeConfig(home.home, FAST);
      await api.close();
    }
  }, 120_000);

  it.skipIf(!hasScript)('on a terminal (script(1) pty), logs short lines, not JSON', () => {
    const r = spawnSync('script', ['-qec', `timeout -s INT 10 ${process.execPath} ${BIN} worker`, '/dev/null'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, COMPANYCTL_HOME: home.home, NO_COLOR: '1', TERM: 'xterm' },
      encoding: 'utf8',
    });
    expect(r.stdout).toMatch(/^\d\d:\d\d:\d\d started/m);
    expect(r.stdout).toMatch(/^\d\d:\d\d:\d\d stopped/m);
    expect(r.stdout).not.toContain('{"time"');
  });
});
