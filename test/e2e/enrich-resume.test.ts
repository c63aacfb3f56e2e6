// The built binary, killed (SIGKILL) in the middle of an enrich run, resumes on the next run
// without asking the API again about the companies it had finished.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BIN, bootstrapBin, runBin, runBinAsync, tempHome } from '../helpers.js';
import { byDomain, enrichConfig, startApi, type TestApi } from '../../fixtures/enrich/server.js';

describe('enrich resume after a kill', () => {
  let home: ReturnType<typeof tempHome>;
  let api: TestApi;
  let env: Record<string, string>;

  beforeAll(async () => {
    home = tempHome();
    api = await startApi(byDomain);
    const config = join(home.home, 'config.json');
    writeFileSync(config, JSON.stringify({ enrich: enrichConfig(api.url, { concurrency: 1 }) }));
    env = { COMPANYCTL_HOME: home.home, COMPANYCTL_CONFIG: config, TEST_ENRICH_KEY: 'k-123' };
    bootstrapBin(env);
    const input = Array.from({ length: 8 }, (_, i) => ({ name: `C${i}`, domain: i === 0 ? 'acme.de' : `c${i}.example` }));
    for (const c of input) expect(runBin(['company', 'create', '--from-json', '-', '--quiet'], { env, input: JSON.stringify(c) }).code).toBe(0);
  });
  afterAll(async () => {
    await api.close();
    home.cleanup();
  });

  const doneItems = (): number => {
    const db = new Database(join(home.home, 'data', 'companyctl.db'), { readonly: true, fileMustExist: true });
    try {
      return Number((db.prepare(`select count(*) as n from enrich_run_item where status <> 'pending'`).get() as { n: number }).n);
    } finally {
      db.close();
    }
  };

  it('finished companies are not asked for again', async () => {
    // Three answers, then the API hangs: the process is killed with a request in flight.
    api.handler = (req, n) => (api.requests.length <= 3 ? byDomain(req, n) : { hang: true });
    const child = spawn(process.execPath, [BIN, 'enrich', '--json'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, sig) => r(sig)));
    const deadline = Date.now() + 20_000;
    while ((doneItems() < 3 || api.requests.length < 4) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(doneItems()).toBe(3);
    expect(api.requests.length).toBe(4);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const finished = new Set(api.requests.slice(0, 3).map((r) => r.path));
    api.requests.length = 0;
    api.handler = byDomain;
    // --refresh: the cache would hide a repeat; the run's checkpoint must prevent it.
    const r = await runBinAsync(['enrich', '--json', '--refresh'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ runId: 1, resumed: true, total: 8, alreadyDone: 3, enriched: 1, notFound: 7, requests: 5, state: 'completed' });
    expect(api.requests).toHaveLength(5);
    for (const q of api.requests) expect(finished.has(q.path)).toBe(false);

    const list = JSON.parse((await runBinAsync(['enrich', 'list', '--json'], { env })).stdout);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ id: 1, state: 'completed', total: 8, pending: 0 });
  });
});
