// companyctl webhook add|list|remove|test, and deliveries through the event dispatcher to a
// local receiver (127.0.0.1, started here): signature verifiable by the receiver, a retry after
// a 500, dead letters after repeated failures, visible in `events list`. On a TTY, without one,
// and with --json.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifySignature } from '../../src/services/webhook.js';
import { ADMIN_PASSWORD, runInProcess, tempHome } from '../helpers.js';
import { startApi, type Recorded, type TestApi } from '../../fixtures/enrich/server.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const SECRET = 'whsec_test_0123456789abcdef';
let home: ReturnType<typeof tempHome>;
let receiver: TestApi;
let configFile: string;

const cli = (args: string[], opts: { tty?: boolean; stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<Run> =>
  runInProcess(args, { COMPANYCTL_HOME: home.home, COMPANYCTL_CONFIG: configFile, ...opts.env }, opts);
const json = async (args: string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}) => {
  const r = await cli([...args, '--json'], opts);
  return { ...r, doc: r.stdout ? JSON.parse(r.stdout) : undefined };
};
const add = async (path = '/hook', events = 'company.*,import.completed') => {
  const r = await json(['webhook', 'add', `${receiver.url}${path}`, '--events', events, '--secret-stdin'], { stdin: `${SECRET}\n` });
  expect(r.code, r.stderr).toBe(0);
  return r.doc.id as number;
};
const verified = (q: Recorded) => verifySignature(SECRET, q.headers['x-companyctl-signature'] as string, q.body, Math.floor(Date.now() / 1000));
const deliveries = async (flag: string) => (await json(['events', 'list', flag])).doc.items.filter((d: { handler: string }) => d.handler === 'webhook');

beforeEach(async () => {
  home = tempHome();
  configFile = join(home.home, 'config.json');
  writeFileSync(configFile, JSON.stringify({ events: { maxAttempts: 3, backoffSeconds: 0.05, maxBackoffSeconds: 0.2 } }));
  receiver = await startApi(() => ({ status: 204 }));
  expect((await cli(['init', '--password-stdin'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
  expect((await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
});
afterEach(async () => {
  await receiver.close();
  home.cleanup();
});

describe('webhook add, list, remove', () => {
  it('adds a webhook with a secret from stdin; the secret is never printed', async () => {
    const r = await json(['webhook', 'add', `${receiver.url}/hook`, '--events', 'company.*,import.completed', '--secret-stdin', '--description', 'CRM'], { stdin: SECRET });
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc).toMatchObject({ id: 1, url: `${receiver.url}/hook`, events: ['company.*', 'import.completed'], description: 'CRM', createdBy: 'admin' });
    expect(r.doc).not.toHaveProperty('secret');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });

  it('without --secret-stdin generates a secret and shows it once', async () => {
    const r = await json(['webhook', 'add', `${receiver.url}/hook`, '--events', '*']);
    expect(r.doc.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(r.stderr).toContain('shown once');
    expect((await json(['webhook', 'list'])).stdout).not.toContain(r.doc.secret);
  });

  it('refuses bad URLs, plain http to other hosts (unless --allow-http), short secrets and bad patterns', async () => {
    const code = async (args: string[], stdin?: string) => {
      const r = await json(['webhook', 'add', ...args], { stdin });
      return [r.code, JSON.parse(r.stderr).error.code];
    };
    expect(await code(['ftp://x.example/', '--events', '*'])).toEqual([2, 'COMPANYCTL_INVALID_INPUT']);
    expect(await code(['http://hooks.example.com/x', '--events', '*'])).toEqual([2, 'COMPANYCTL_INVALID_INPUT']);
    expect(await code(['https://user:pw@hooks.example.com/x', '--events', '*'])).toEqual([2, 'COMPANYCTL_INVALID_INPUT']);
    expect(await code(['https://hooks.example.com/x', '--events', 'company.*', '--secret-stdin'], 'short')).toEqual([2, 'COMPANYCTL_INVALID_INPUT']);
    expect(await code(['https://hooks.example.com/x', '--events', 'Company!'])).toEqual([2, 'COMPANYCTL_USAGE']);
    expect((await json(['webhook', 'add', 'http://hooks.example.com/x', '--events', '*', '--allow-http'])).code).toBe(0);
  });

  it('lists webhooks on a TTY, as lines and as JSON, never with secrets; removes them', async () => {
    await add();
    const tty = await cli(['webhook', 'list'], { tty: true, env: { COLUMNS: '200' } });
    expect(tty.stdout).toMatch(/^id\s+url/m);
    expect(tty.stdout).toContain('company.*;import.completed');
    const plain = await cli(['webhook', 'list']);
    expect(plain.stdout).toBe(`id\turl\tevents\tdelivered\tfailing\tlastError\tcreatedBy\tcreatedAt\n1\t${receiver.url}/hook\tcompany.*;import.completed\t0\t0\t\tadmin\t${JSON.parse((await json(['webhook', 'list'])).stdout)[0].createdAt}\n`);
    const j = await json(['webhook', 'list']);
    expect(j.doc).toEqual([expect.objectContaining({ id: 1, delivered: 0, failing: 0, lastError: null })]);
    for (const out of [tty.stdout, plain.stdout, j.stdout]) expect(out).not.toContain(SECRET);
    expect((await json(['webhook', 'remove', '1'])).doc).toEqual({ id: 1, removed: true });
    expect((await cli(['webhook', 'remove', '1'])).code).toBe(1);
    expect((await cli(['webhook', 'list'])).stdout).toBe('id\turl\tevents\tdelivered\tfailing\tlastError\tcreatedBy\tcreatedAt\n');
  });

  it('only an admin manages webhooks (exit 4)', async () => {
    const t = await cli(['token', 'create', '--name', 'ed', '--role', 'editor']);
    const r = await json(['webhook', 'list'], { env: { COMPANYCTL_TOKEN: t.stdout.trim() } });
    expect(r.code).toBe(4);
  });
});

describe('webhook test', () => {
  it('sends a signed webhook.test event the receiver can verify (TTY, lines, JSON)', async () => {
    await add();
    const r = await json(['webhook', 'test', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc).toMatchObject({ id: 1, ok: true, status: 204, error: null });
    const q = receiver.requests[0]!;
    expect(q.method).toBe('POST');
    expect(q.headers['content-type']).toBe('application/json');
    expect(q.headers['x-companyctl-event']).toBe('webhook.test');
    expect(verified(q)).toBe(true);
    // A changed body, another secret or an old timestamp do not verify.
    expect(verifySignature(SECRET, q.headers['x-companyctl-signature'] as string, `${q.body} `, Math.floor(Date.now() / 1000))).toBe(false);
    expect(verifySignature('another-secret-of-some-length', q.headers['x-companyctl-signature'] as string, q.body, Math.floor(Date.now() / 1000))).toBe(false);
    expect(verifySignature(SECRET, q.headers['x-companyctl-signature'] as string, q.body, Math.floor(Date.now() / 1000) + 600)).toBe(false);
    expect(JSON.parse(q.body)).toMatchObject({ id: 0, type: 'webhook.test', actor: 'admin', data: { webhookId: 1 } });
    expect((await cli(['webhook', 'test', '1'])).stdout).toContain('ok\ttrue\n');
    expect((await cli(['webhook', 'test', '1'], { tty: true })).stdout).toMatch(/^status\s+204/m);
  });

  it('a receiver that fails: exit 1 with COMPANYCTL_WEBHOOK_DELIVERY_FAILED', async () => {
    await add();
    receiver.handler = () => ({ status: 500 });
    const r = await json(['webhook', 'test', '1']);
    expect(r.code).toBe(1);
    expect(r.doc).toMatchObject({ ok: false, status: 500 });
    expect(JSON.parse(r.stderr).error.code).toBe('COMPANYCTL_WEBHOOK_DELIVERY_FAILED');
    expect(receiver.requests).toHaveLength(1);
    expect((await json(['webhook', 'test', '9'])).code).toBe(1);
  });
});

describe('webhook deliveries through the event dispatcher', () => {
  it('a company write is delivered once, signed, with the event in the body', async () => {
    await add();
    await add('/other', 'import.*');
    expect((await cli(['company', 'create', '--name', 'Acme', '--domain', 'acme.de'])).code).toBe(0);
    expect(receiver.requests).toHaveLength(1);
    const q = receiver.requests[0]!;
    expect(q.path).toBe('/hook');
    expect(verified(q)).toBe(true);
    expect(q.headers['x-companyctl-event']).toBe('company.created');
    const body = JSON.parse(q.body);
    expect(body).toMatchObject({ type: 'company.created', actor: 'admin', companyId: 1, data: { before: null, after: { name: 'Acme', domain: 'acme.de' } } });
    expect(q.headers['x-companyctl-event-id']).toBe(String(body.id));
    expect((await json(['webhook', 'list'])).doc[0]).toMatchObject({ delivered: 1, failing: 0 });
  });

  it('a 500 is retried with backoff and then delivered; only the webhook that missed it gets it again', async () => {
    await add('/ok');
    await add('/flaky');
    receiver.handler = (q, n) => (q.path === '/flaky' && n === 1 ? { status: 500 } : { status: 200 });
    const w = await cli(['company', 'create', '--name', 'Acme']);
    expect(w.code).toBe(0);
    const failed = await deliveries('--failed');
    expect(failed).toEqual([expect.objectContaining({ status: 'failed', attempts: 1 })]);
    expect(failed[0].lastError).toMatch(/webhook 2 \(127\.0\.0\.1:\d+\): HTTP 500/);
    expect((await cli(['events', 'drain', '--wait', '5s'])).code).toBe(0);
    expect(receiver.requests.map((q) => q.path)).toEqual(['/ok', '/flaky', '/flaky']);
    expect(receiver.requests.every(verified)).toBe(true);
    expect(new Set(receiver.requests.map((q) => q.headers['x-companyctl-event-id'])).size).toBe(1);
    expect(await deliveries('--failed')).toEqual([]);
    const hooks = (await json(['webhook', 'list'])).doc;
    expect(hooks.map((h: { delivered: number; failing: number }) => [h.delivered, h.failing])).toEqual([[1, 0], [1, 0]]);
  });

  it('a receiver that keeps failing is dead-lettered after the last attempt, visible in events list', async () => {
    await add();
    receiver.handler = () => ({ status: 503 });
    await cli(['company', 'create', '--name', 'Acme']);
    const drain = await cli(['events', 'drain', '--wait', '5s']);
    expect(drain.code).not.toBe(0);
    const dead = await deliveries('--dead');
    expect(dead).toEqual([expect.objectContaining({ type: 'company.created', status: 'dead', attempts: 3 })]);
    expect(dead[0].lastError).toContain('HTTP 503');
    expect(receiver.requests).toHaveLength(3);
    expect((await json(['webhook', 'list'])).doc[0]).toMatchObject({ delivered: 0, failing: 1, lastError: 'HTTP 503' });
    // Fixed receiver: "events retry" delivers it.
    receiver.handler = () => ({ status: 200 });
    expect((await cli(['events', 'retry', String(dead[0].eventId)])).code).toBe(0);
    await cli(['events', 'drain']);
    expect(receiver.requests).toHaveLength(4);
    expect(await deliveries('--dead')).toEqual([]);
  });

  it('the secret stays in the store: not in the cache, logs, audit log or metrics', async () => {
    await add();
    await cli(['company', 'create', '--name', 'Acme']);
    await cli(['webhook', 'test', '1']);
    const files = readdirSync(home.home, { recursive: true, withFileTypes: true }).filter((d) => d.isFile() && !d.name.startsWith('companyctl.db'));
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) expect(readFileSync(join(f.parentPath, f.name), 'utf8'), f.name).not.toContain(SECRET);
  });
});
