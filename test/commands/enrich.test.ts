// companyctl enrich against a local HTTP API (127.0.0.1, started here): selection, mapping,
// provenance, cache, rate limit, retries, Retry-After, failures and exit codes; on a TTY,
// without one, and with --json.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, runInProcess, tempHome } from '../helpers.js';
import { byDomain, enrichConfig, startApi, type TestApi } from '../../fixtures/enrich/server.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const API_KEY = 'test-key-5f1e0c9a';
let home: ReturnType<typeof tempHome>;
let api: TestApi;
let configFile: string;

const cli = (args: string[], opts: { tty?: boolean; stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<Run> =>
  runInProcess(args, { COMPANYCTL_HOME: home.home, COMPANYCTL_CONFIG: configFile, TEST_ENRICH_KEY: API_KEY, ...opts.env }, opts);

const json = async (args: string[], env?: Record<string, string | undefined>) => {
  const r = await cli([...args, '--json'], { env });
  return { ...r, doc: r.stdout ? JSON.parse(r.stdout) : undefined };
};
const writeConfig = (over: Record<string, unknown> = {}) => writeFileSync(configFile, JSON.stringify({ enrich: enrichConfig(api.url, over) }));
const create = async (...flags: string[]) => {
  const r = await cli(['company', 'create', '--json', ...flags]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).id as number;
};
const get = async (ref: string | number) => JSON.parse((await cli(['company', 'get', String(ref), '--json', '--fresh'])).stdout);

beforeEach(async () => {
  home = tempHome();
  configFile = join(home.home, 'config.json');
  api = await startApi(byDomain);
  writeConfig();
  expect((await cli(['init', '--password-stdin'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
  expect((await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
});
afterEach(async () => {
  await api.close();
  home.cleanup();
});

describe('enrich', () => {
  beforeEach(async () => {
    await create('--name', 'Acme', '--domain', 'acme.de');
    await create('--name', 'Globex', '--domain', 'globex.com', '--employees', '11000');
    await create('--name', 'Initech', '--domain', 'initech.com', '--legal-name', 'Initech (typed by hand)');
    await create('--name', 'Nobody', '--domain', 'unknown.org');
    await create('--name', 'No key at all');
  });

  it('fills in missing fields, keeps values set by hand, reports not found and skipped (--json)', async () => {
    const r = await json(['enrich']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc).toMatchObject({ total: 5, enriched: 3, unchanged: 0, notFound: 1, failed: 0, skipped: 1, pending: 0, requests: 4, cacheHits: 0, state: 'completed', resumed: false, failures: [] });
    expect(await get('acme.de')).toMatchObject({ legalName: 'Acme Robotics GmbH', employees: 450, industry: 'Robotics', city: 'Berlin', country: 'DE', postcode: '10115', version: 2 });
    // Set by hand: kept.
    expect(await get('globex.com')).toMatchObject({ employees: 11000, legalName: 'Globex Corporation' });
    expect(await get('initech.com')).toMatchObject({ legalName: 'Initech (typed by hand)', employees: 80 });
    // The key went in the header, and nowhere else.
    expect(api.requests.every((q) => q.headers.authorization === `Bearer ${API_KEY}`)).toBe(true);
    expect(api.requests.map((q) => q.path).sort()).toEqual(['/v1/companies?domain=acme.de', '/v1/companies?domain=globex.com', '/v1/companies?domain=initech.com', '/v1/companies?domain=unknown.org']);
    expect(r.stdout + r.stderr).not.toContain(API_KEY);
    const cacheDir = join(home.home, 'cache');
    const files = readdirSync(cacheDir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(readFileSync(join(f.parentPath, f.name), 'utf8')).not.toContain(API_KEY);
  });

  it('writes through the normal path: one company.updated event per enriched company, with the run as actor', async () => {
    await json(['enrich']);
    const { openStore } = await import('../../src/infra/db/store.js');
    const { resolveStoreLocation } = await import('../../src/infra/db/location.js');
    const store = await openStore(resolveStoreLocation(undefined, join(home.home, 'data', 'companyctl.db')));
    try {
      const events = await store.read.all<{ type: string; actor: string; company_id: number }>(`select type, actor, company_id from outbox_event where type = 'company.updated' order by id`);
      expect(events.map((e) => e.company_id)).toEqual([1, 2, 3]);
      expect(events[0]!.actor).toBe('admin (enrich run 1)');
      const prov = await store.read.all<{ field: string }>('select field from company_enrichment where company_id = 3 order by field');
      expect(prov.map((p) => p.field)).toEqual(['city', 'country', 'employees', 'industry']);
    } finally {
      await store.close();
    }
  });

  it('raises enrich.completed with the counts; a webhook subscribed to it gets it', async () => {
    const hook = await cli(['webhook', 'add', `${api.url}/hook`, '--events', 'enrich.*', '--secret-stdin'], { stdin: 'hook-secret-0123456789' });
    expect(hook.code, hook.stderr).toBe(0);
    const handler = api.handler;
    api.handler = (req, n) => (req.path === '/hook' ? { status: 204 } : handler(req, n));
    expect((await json(['enrich'])).code).toBe(0);
    const posts = api.requests.filter((q) => q.path === '/hook');
    expect(posts).toHaveLength(1);
    expect(JSON.parse(posts[0]!.body)).toMatchObject({ type: 'enrich.completed', actor: 'admin', data: { runId: 1, state: 'completed', total: 5, enriched: 3, notFound: 1, skipped: 1, requests: 4 } });
  });

  it('a second run within the TTL makes no requests (cache hits); --refresh asks again', async () => {
    expect((await json(['enrich'])).code).toBe(0);
    const before = api.requests.length;
    const again = await json(['enrich']);
    expect(again.doc).toMatchObject({ runId: 2, requests: 0, cacheHits: 4, enriched: 0, unchanged: 3, notFound: 1, skipped: 1 });
    expect(api.requests.length).toBe(before);
    const refreshed = await json(['enrich', '--refresh']);
    expect(refreshed.doc).toMatchObject({ requests: 4, cacheHits: 0, unchanged: 3 });
    expect(api.requests.length).toBe(before + 4);
  });

  it('--overwrite replaces values set by hand; values enrichment wrote follow the API; a later hand edit is kept', async () => {
    await json(['enrich']);
    expect((await json(['enrich', '--ids', '3', '--overwrite'])).doc).toMatchObject({ enriched: 1 });
    expect((await get(3)).legalName).toBe('Initech LLC');
    // The API changes its answer: enrichment's own values follow it...
    api.handler = (req) => (req.path.includes('acme.de') ? { body: { data: { legal_name: 'Acme Robotics SE', headcount: 500, address: { city: 'Berlin' } } } } : byDomain(req, 1));
    await cli(['company', 'update', 'acme.de', '--employees', '470']); // ...except what an admin changed since
    const r = await json(['enrich', '--ids', '1', '--refresh']);
    expect(r.doc).toMatchObject({ enriched: 1 });
    expect(await get(1)).toMatchObject({ legalName: 'Acme Robotics SE', employees: 470 });
  });

  it('--only-missing skips complete companies; --ids selects', async () => {
    await json(['enrich', '--ids', '1']);
    const r = await json(['enrich', '--ids', '1,2', '--only-missing']);
    expect(r.doc).toMatchObject({ total: 2, skipped: 1, enriched: 1 });
    expect(api.requests.filter((q) => q.path.includes('acme'))).toHaveLength(1);
    const usage = await json(['enrich', '--ids', '1', '--country', 'DE']);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr).error.code).toBe('COMPANYCTL_USAGE');
  });

  it('a permanent 4xx is reported, not retried, and exits 3; other companies are still done', async () => {
    api.handler = (req, n) => (req.path.includes('globex') ? { status: 400, body: { error: 'bad request' } } : byDomain(req, n));
    const r = await json(['enrich']);
    expect(r.code).toBe(3);
    expect(r.doc).toMatchObject({ failed: 1, enriched: 2, notFound: 1, state: 'completed_with_failures' });
    expect(r.doc.failures).toEqual([{ companyId: 2, code: 'COMPANYCTL_ENRICH_HTTP_ERROR', message: 'the API answered HTTP 400', status: 400 }]);
    expect(api.requests.filter((q) => q.path.includes('globex'))).toHaveLength(1);
    const plain = await cli(['enrich', '--restart']);
    expect(plain.code).toBe(3);
    expect(plain.stderr).toContain('company 2: the API answered HTTP 400 (COMPANYCTL_ENRICH_HTTP_ERROR)');
  });

  it('5xx is retried with backoff and then succeeds; when retries run out the company fails', async () => {
    api.handler = (req, n) => (req.path.includes('acme') && n <= 2 ? { status: 503 } : req.path.includes('globex') ? { status: 500 } : byDomain(req, n));
    const r = await json(['enrich']);
    expect(r.code).toBe(3);
    expect(r.doc).toMatchObject({ enriched: 2, failed: 1, retries: 2 + 3 });
    expect(r.doc.failures[0]).toMatchObject({ companyId: 2, code: 'COMPANYCTL_ENRICH_UNAVAILABLE', status: 500 });
    expect(r.doc.failures[0].message).toContain('HTTP 500 (after 4 attempts)');
    expect(api.requests.filter((q) => q.path.includes('acme'))).toHaveLength(3);
    expect((await get(1)).legalName).toBe('Acme Robotics GmbH');
  });

  it('honours Retry-After on 429', async () => {
    api.handler = (req, n) => (req.path.includes('acme') && n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : byDomain(req, n));
    const r = await json(['enrich', '--ids', '1']);
    expect(r.doc).toMatchObject({ enriched: 1, requests: 2, retries: 1 });
    const [first, second] = api.requests;
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
  });

  it('every company failing exits 1 with COMPANYCTL_ENRICH_FAILED, after the summary', async () => {
    writeConfig({ retries: 0 });
    api.handler = () => ({ status: 500 });
    const r = await json(['enrich', '--ids', '1,2']);
    expect(r.code).toBe(1);
    expect(r.doc).toMatchObject({ failed: 2 });
    expect(JSON.parse(r.stderr).error.code).toBe('COMPANYCTL_ENRICH_FAILED');
  });

  it('an answer whose values are invalid fails the company and names the fields', async () => {
    api.handler = () => ({ body: { data: { address: { country: 'Atlantis' } } } });
    const r = await json(['enrich', '--ids', '1,2']);
    expect(r.code).toBe(1);
    expect(r.doc.failures[0]).toMatchObject({ code: 'COMPANYCTL_INVALID_INPUT' });
    expect(r.doc.failures[0].message).toContain('country');
  });
});

describe('enrich: rate limit', () => {
  it('never sends more than rate.requests in any rate.perMs window', async () => {
    // The test server shares this process's event loop, so arrival stamps can bunch by tens of
    // ms under load: a 1 s window with 100 ms slack still fails at once without a rate limit.
    writeConfig({ concurrency: 8, rate: { requests: 3, perMs: 1000 } });
    for (let i = 0; i < 10; i++) await create('--name', `C${i}`, '--domain', `c${i}.example`);
    const started = Date.now();
    const r = await json(['enrich']);
    expect(r.doc).toMatchObject({ total: 10, notFound: 10, requests: 10 });
    const t = api.requests.map((q) => q.at).sort((a, b) => a - b);
    for (let i = 0; i + 3 < t.length; i++) expect(t[i + 3]! - t[i]!).toBeGreaterThanOrEqual(1000 - 100);
    // 10 requests at 3 per second: at least three full windows.
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000 - 100);
  });
});

describe('enrich: output and configuration', () => {
  beforeEach(async () => {
    await create('--name', 'Acme', '--domain', 'acme.de');
    await create('--name', 'Bad', '--domain', 'globex.com');
  });

  it('on a TTY: a progress bar on stderr and a summary table on stdout', async () => {
    const r = await cli(['enrich'], { tty: true });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/2\/2 \| enriched 2/);
    expect(r.stdout).toMatch(/^enriched\s+2/m);
    expect(r.stdout).toMatch(/^cacheHits\s+0/m);
  });

  it('without a TTY: stable key<TAB>value lines and no progress bar', async () => {
    const r = await cli(['enrich']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('enriched\t2\n');
    expect(r.stdout).toContain('requests\t2\n');
    expect(r.stdout.split('\n')[0]).toBe('runId\t1');
  });

  it('enrich list: runs with counts, as a table, lines and JSON', async () => {
    await cli(['enrich']);
    const j = await json(['enrich', 'list']);
    expect(j.doc).toHaveLength(1);
    expect(j.doc[0]).toMatchObject({ id: 1, state: 'completed', total: 2, enriched: 2, requests: 2, actor: 'admin' });
    expect((await cli(['enrich', 'list'])).stdout).toMatch(/^id\tstate\t.*\n1\tcompleted\t2\t2\t0\t0\t0\t0\t0\t2\t0\tadmin\t/);
    expect((await cli(['enrich', 'list'], { tty: true })).stdout).toMatch(/^id\s+state/m);
  });

  it('without an "enrich" section: COMPANYCTL_ENRICH_NOT_CONFIGURED', async () => {
    writeFileSync(configFile, '{}');
    const r = await json(['enrich']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr).error.code).toBe('COMPANYCTL_ENRICH_NOT_CONFIGURED');
  });

  it('an invalid enrich section names the setting', async () => {
    writeConfig({ fields: { revenue: 'data.revenue' } });
    const r = await json(['enrich']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'COMPANYCTL_CONFIG_INVALID', field: 'enrich.fields.revenue' });
    writeFileSync(configFile, JSON.stringify({ enrich: { ...enrichConfig(api.url), requets: {} } }));
    expect(JSON.parse((await json(['enrich'])).stderr).error.field).toBe('enrich.requets');
  });

  it('without the API key: COMPANYCTL_ENRICH_NO_API_KEY, and nothing is asked', async () => {
    const r = await json(['enrich'], { TEST_ENRICH_KEY: undefined });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'COMPANYCTL_ENRICH_NO_API_KEY', hint: 'set TEST_ENRICH_KEY' });
    expect(api.requests).toHaveLength(0);
  });

  it('set-key never reads the key from argv: without a terminal it needs --stdin', async () => {
    const r = await json(['enrich', 'set-key']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'COMPANYCTL_MISSING_FIELD', field: '--stdin' });
    const empty = await json(['enrich', 'set-key', '--stdin']);
    expect(JSON.parse(empty.stderr).error.code).toBe('COMPANYCTL_MISSING_FIELD');
  });

  it('a viewer may list runs but not enrich (exit 4)', async () => {
    const t = await cli(['token', 'create', '--name', 'v', '--role', 'viewer']);
    const env = { COMPANYCTL_TOKEN: t.stdout.trim() };
    expect((await json(['enrich'], env)).code).toBe(4);
    expect((await json(['enrich', 'list'], env)).code).toBe(0);
  });
});
