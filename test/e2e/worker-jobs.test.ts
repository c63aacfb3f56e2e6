// Queued jobs on PostgreSQL, end to end with real worker processes: bad input refused before
// anything is queued; three workers racing over many jobs (each runs once, exact counts, every
// event delivered once per handler); a worker killed with SIGKILL mid-job taken over after its
// lease and resumed from its last committed chunk; SIGTERM hands a job back; a corrupt staged
// input fails its job and the worker carries on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { bootstrapBin, freshPgDatabase, PG_SKIP_REASON, PG_URL, ROOT, runBin, runBinAsync, runInProcess, tempHome } from '../helpers.js';
import { eventually, startWorker, TcpProxy, type WorkerProcess } from '../worker-helpers.js';

const FIX = join(ROOT, 'fixtures', 'import');

function csv(file: string, from: number, count: number): string {
  const lines = ['name,domain,country,employees'];
  for (let i = from; i < from + count; i++) lines.push(`Company ${i},c${i}.example.com,DE,${i % 1000}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

describe.skipIf(!PG_URL)(`queued jobs on PostgreSQL${PG_URL ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
  let home: ReturnType<typeof tempHome>;
  let pgDb: Awaited<ReturnType<typeof freshPgDatabase>>;
  let env: Record<string, string>;
  let workerEnv: Record<string, string>;
  let db: pg.Client;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    home = tempHome();
    pgDb = await freshPgDatabase();
    env = { COMPANYCTL_HOME: home.home, COMPANYCTL_DB: pgDb.url };
    mkdirSync(join(home.home, 'config'), { recursive: true });
    writeFileSync(join(home.home, 'config', 'config.json'), JSON.stringify({ worker: { leaseSeconds: 10, heartbeatSeconds: 1 }, events: { leaseSeconds: 10 } }));
    bootstrapBin(env);
    const token = runBin(['token', 'create', '--name', 'workers', '--role', 'editor', '--quiet'], { env }).stdout.trim();
    workerEnv = { ...env, COMPANYCTL_TOKEN: token };
    db = new pg.Client({ connectionString: pgDb.url });
    await db.connect();
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await db?.end();
    await pgDb?.cleanup();
    home?.cleanup();
  });

  const spawn = (args: string[] = []) => {
    const w = startWorker(workerEnv, args);
    workers.push(w);
    return w;
  };
  const queue = (args: string[]) => {
    const r = runBin(['import', ...args, '--queue', '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { jobId: number; state: string };
  };
  const count = async (sql: string, params: unknown[] = []) => Number((await db.query(sql, params)).rows[0].n);
  const finished = (ws: WorkerProcess[]) => ws.flatMap((w) => w.lines().filter((l) => l.msg === 'job finished').map((l) => ({ ...l, pid: w.child.pid })));

  it('refuses input that fails the up-front checks before anything is queued', async () => {
    const bad = join(home.home, 'bad.csv');
    writeFileSync(bad, 'name,domain\nAcme,not a domain\nGlobex,also bad\n');
    const r = runBin(['import', bad, '--queue', '--json'], { env });
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'COMPANYCTL_INVALID_INPUT', field: 'line 2: domain' });
    const missing = runBin(['import', join(home.home, 'nope.csv'), '--queue', '--json'], { env });
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stderr).error).toMatchObject({ code: 'COMPANYCTL_USAGE', field: 'file' });
    const badKey = runBin(['import', join(FIX, 'companies.csv'), '--queue', '--key', 'name', '--json'], { env });
    expect(JSON.parse(badKey.stderr).error).toMatchObject({ code: 'COMPANYCTL_USAGE', field: '--key' });
    const latin = runBin(['import', join(FIX, 'companies-windows1252.csv'), '--queue', '--json'], { env });
    expect(latin.code).toBe(2);
    expect(JSON.parse(latin.stderr).error).toMatchObject({ field: '--encoding' });
    const dry = runBin(['import', join(FIX, 'companies.csv'), '--queue', '--dry-run', '--json'], { env });
    expect(JSON.parse(dry.stderr).error).toMatchObject({ code: 'COMPANYCTL_USAGE', field: '--queue' });
    expect(await count('select count(*) as n from queued_job')).toBe(0);
    expect(await count('select count(*) as n from queued_job_input')).toBe(0);
  }, 180_000);

  it('three workers race over seven jobs: each runs once, with exact counts; every event is delivered once per handler', async () => {
    const jobs: number[] = [];
    for (let i = 0; i < 6; i++) jobs.push(queue([csv(join(home.home, `batch-${i}.csv`), i * 500, 500), '--chunk-size', '100']).jobId);
    // One from stdin, gzip-compressed by the submitter's pipe.
    const stdin = runBin(['import', '-', '--format', 'ndjson', '--queue', '--json'], { env, input: readFileSync(join(FIX, 'companies.ndjson'), 'utf8') });
    expect(stdin.code, stdin.stderr).toBe(0);
    jobs.push(JSON.parse(stdin.stdout).jobId);
    const list = await runInProcess(['import', 'list', '--state', 'queued', '--json'], env);
    expect(JSON.parse(list.stdout).items).toHaveLength(7);

    const racers = [spawn(), spawn(), spawn()];
    const waits = await Promise.all(jobs.map((id) => runBinAsync(['import', 'wait', String(id), '--timeout', '3m', '--json'], { env })));
    for (const [i, w] of waits.entries()) {
      expect(w.code, w.stderr).toBe(0);
      expect(JSON.parse(w.stdout)).toMatchObject({ jobId: jobs[i], state: 'completed', exitCode: 0, rejected: 0 });
    }
    expect(waits.slice(0, 6).map((w) => JSON.parse(w.stdout).inserted)).toEqual(Array(6).fill(500));
    const runs = finished(racers);
    expect(runs.map((r) => r.jobId).sort((a, b) => Number(a) - Number(b))).toEqual(jobs);
    expect(await count('select count(*) as n from company')).toBe(6 * 500 + 6);
    expect(await count('select count(*) as n from import_job')).toBe(7);
    expect(await count(`select count(*) as n from queued_job_input`)).toBe(0); // dropped once done

    // Every event (one import.completed per job) reached each handler exactly once.
    await eventually(async () => (await count(`select count(*) as n from event_delivery where status <> 'done'`)) === 0 && (await count(`select count(*) as n from outbox_event where status = 'pending'`)) === 0);
    const audit = readFileSync(join(home.home, 'state', 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { eventId: number | null; action: string }).filter((l) => l.eventId !== null && l.eventId !== undefined);
    const ids = audit.map((l) => l.eventId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(audit.filter((l) => l.action === 'import.completed')).toHaveLength(7);
    expect(await count(`select count(*) as n from event_delivery`)).toBe(4 * (await count('select count(*) as n from outbox_event')));

    const listed = JSON.parse((await runInProcess(['import', 'list', '--json', '--limit', '50'], env)).stdout).items as { id: number; queuedJob: { id: number } | null }[];
    expect(listed.filter((j) => j.queuedJob).map((j) => j.queuedJob!.id).sort((a, b) => a - b)).toEqual(jobs);
    await Promise.all(racers.map((w) => w.stop()));
  }, 180_000);

  it('a worker killed with SIGKILL mid-job is taken over after its lease, resuming from its last committed chunk', async () => {
    const before = await count('select count(*) as n from company');
    const { jobId } = queue([csv(join(home.home, 'big.csv'), 100_000, 40_000), '--chunk-size', '1000']);
    const victim = spawn();
    await victim.waitFor((l) => l.msg === 'job started' && l.jobId === jobId);
    // Some chunks committed, not all.
    await eventually(async () => (await count(`select coalesce(max(rows_done), 0) as n from import_job where source like '%big.csv.gz'`)) >= 2000, 60_000, 50);
    victim.child.kill('SIGKILL');
    await victim.exited;
    const committed = await count(`select rows_done as n from import_job where source like '%big.csv.gz'`);
    expect(committed).toBeLessThan(40_000);

    const heir = spawn();
    const resumed = await heir.waitFor((l) => l.msg === 'job resumed' && l.jobId === jobId, 60_000);
    expect(resumed.attempt).toBe(2);
    const wait = await runBinAsync(['import', 'wait', String(jobId), '--timeout', '3m', '--json'], { env });
    expect(wait.code, wait.stderr).toBe(0);
    const done = JSON.parse(wait.stdout);
    expect(done).toMatchObject({ state: 'completed', rows: 40_000, rejected: 0 });
    // One import job, resumed: the rows the victim committed were not written again.
    expect(await count(`select count(*) as n from import_job where source like '%big.csv.gz'`)).toBe(1);
    expect(done.inserted).toBe(40_000);
    expect(await count('select count(*) as n from company')).toBe(before + 40_000);
    expect(await count(`select count(distinct domain) as n from company where domain like 'c1_____.example.com'`)).toBe(40_000);
    await heir.stop();
  }, 180_000);

  it('SIGTERM mid-job hands the job back at once and exits 0 within 10 s; the next worker resumes it', async () => {
    const { jobId } = queue([csv(join(home.home, 'term.csv'), 200_000, 40_000), '--chunk-size', '1000']);
    const w = spawn();
    await w.waitFor((l) => l.msg === 'job started' && l.jobId === jobId);
    await eventually(async () => (await count(`select coalesce(max(rows_done), 0) as n from import_job where source like '%term.csv.gz'`)) >= 1000, 60_000, 50);
    const stopped = await w.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(10_000);
    expect(w.lines().some((l) => l.msg.startsWith('job handed back') && l.jobId === jobId)).toBe(true);
    const row = (await db.query('select state, locked_by from queued_job where id = $1', [jobId])).rows[0];
    expect(row).toEqual({ state: 'queued', locked_by: null });
    const next = spawn();
    const wait = await runBinAsync(['import', 'wait', String(jobId), '--timeout', '3m', '--json'], { env });
    expect(wait.code, wait.stderr).toBe(0);
    expect(JSON.parse(wait.stdout)).toMatchObject({ rows: 40_000, inserted: 40_000 });
    await next.stop();
  }, 180_000);

  it('a worker that loses the store mid-job reconnects with backoff; the job, taken over meanwhile, is not processed twice', async () => {
    const proxy = new TcpProxy('127.0.0.1', Number(new URL(PG_URL!).port || 5432));
    const port = await proxy.start();
    try {
      const before = await count('select count(*) as n from company');
      const { jobId } = queue([csv(join(home.home, 'lost.csv'), 500_000, 40_000), '--chunk-size', '1000']);
      const url = new URL(pgDb.url);
      url.port = String(port);
      const cut = startWorker({ ...workerEnv, COMPANYCTL_DB: url.href });
      workers.push(cut);
      await cut.waitFor((l) => l.msg === 'job started' && l.jobId === jobId);
      await eventually(async () => (await count(`select coalesce(max(rows_done), 0) as n from import_job where source like '%lost.csv.gz'`)) >= 2000, 60_000, 50);
      await proxy.cut();
      const heir = spawn();
      await heir.waitFor((l) => l.msg === 'job resumed' && l.jobId === jobId, 60_000);
      await cut.waitFor((l) => l.level === 'error' && /job \d+|heartbeat|claiming/.test(l.msg), 60_000);
      await proxy.start(port);
      await cut.waitFor((l) => l.msg === 'store reachable again' || l.msg === 'listening for changes', 60_000);
      const wait = await runBinAsync(['import', 'wait', String(jobId), '--timeout', '3m', '--json'], { env });
      expect(wait.code, wait.stderr).toBe(0);
      expect(JSON.parse(wait.stdout)).toMatchObject({ state: 'completed', rows: 40_000, rejected: 0 });
      expect(await count('select count(*) as n from company')).toBe(before + 40_000);
      expect(await count(`select count(*) as n from import_job where source like '%lost.csv.gz'`)).toBe(1);
      expect(finished([cut, heir]).filter((l) => l.jobId === jobId).map((l) => l.pid)).toEqual([heir.child.pid]);
      expect(cut.child.exitCode).toBeNull();
      await Promise.all([cut.stop(), heir.stop()]);
    } finally {
      await proxy.close();
    }
  }, 180_000);

  it('a job whose staged input is corrupt fails with the reason; the worker carries on with the next', async () => {
    await Promise.all(workers.map((w) => w.stop()));
    const corrupt = queue([csv(join(home.home, 'corrupt.csv'), 300_000, 50)]).jobId;
    const fine = queue([csv(join(home.home, 'fine.csv'), 300_100, 50)]).jobId;
    await db.query(`update queued_job_input set data = $1 where job_id = $2`, [Buffer.from('this is not gzip at all'), corrupt]);
    const w = spawn();
    const bad = await runBinAsync(['import', 'wait', String(corrupt), '--timeout', '2m', '--json'], { env });
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stderr).error).toMatchObject({ code: 'COMPANYCTL_IMPORT_FAILED' });
    expect(JSON.parse(bad.stderr).error.message).toMatch(/staged input of job \d+ is corrupt/);
    const ok = await runBinAsync(['import', 'wait', String(fine), '--timeout', '2m', '--json'], { env });
    expect(ok.code, ok.stderr).toBe(0);
    expect(w.child.exitCode).toBeNull();
    expect(await count(`select count(*) as n from company where domain like 'c3000__.example.com'`)).toBe(0);
    await w.stop();
  }, 180_000);

  it('a queued import keeps the mapping beyond column=field (bare ids, --set): the worker reads the file as a foreground import would', async () => {
    const { jobId } = queue([join(FIX, 'sec-bare-ids.csv'), '--key', 'external:sec', '--map', 'CIK=external:sec', '--map', 'Entity Name=name', '--set', 'country=US']);
    const w = spawn();
    const done = await runBinAsync(['import', 'wait', String(jobId), '--timeout', '2m', '--json'], { env });
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ state: 'completed', inserted: 4, rejected: 0 });
    const rows = await db.query(`select e.external_id, c.country from company c join company_external_id e on e.company_id = c.id where e.source = 'sec' order by e.external_id`);
    expect(rows.rows).toEqual([
      { external_id: '1318605', country: 'US' },
      { external_id: '320193', country: 'US' },
      { external_id: '66740', country: 'DE' },
      { external_id: '789019', country: 'US' },
    ]);
    await w.stop();
  }, 180_000);

  it('import wait: a timeout is exit 1 (the job goes on); an unknown job is exit 1; a bad --timeout is exit 2; on a TTY a table', async () => {
    await Promise.all(workers.map((w) => w.stop()));
    const { jobId } = queue([csv(join(home.home, 'later.csv'), 400_000, 10)]);
    const t = runBin(['import', 'wait', String(jobId), '--timeout', '1s', '--json'], { env });
    expect(t.code).toBe(1);
    expect(JSON.parse(t.stderr).error).toMatchObject({ code: 'COMPANYCTL_WAIT_TIMEOUT', data: { jobId, state: 'queued' } });
    expect(JSON.parse(runBin(['import', 'wait', '9999', '--json'], { env }).stderr).error.code).toBe('COMPANYCTL_NOT_FOUND');
    expect(runBin(['import', 'wait', String(jobId), '--timeout', 'soon'], { env }).code).toBe(2);
    const w = spawn();
    const tty = await runInProcess(['import', 'wait', String(jobId)], env, { tty: true });
    expect(tty.code).toBe(0);
    expect(tty.stdout).toMatch(/state\s+completed/);
    const plain = await runInProcess(['import', 'wait', String(jobId)], env);
    expect(plain.stdout).toContain('state\tcompleted\n');
    const q = await runInProcess(['import', 'list'], env, { tty: true });
    expect(q.stdout).toMatch(/\bqueued\b/);
    await w.stop();
  }, 180_000);
});
