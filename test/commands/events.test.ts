// events, audit and stats commands run in-process through runCli: on a TTY, without one, and
// with --json; dead letters and retries; alerts; the metrics file; the app log.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import parsePrometheus from 'parse-prometheus-text-format';
import { ADMIN_PASSWORD, runInProcess, tempHome } from '../helpers.js';
import { checkExposition } from '../services/prometheus-exposition.js';

let home: ReturnType<typeof tempHome>;
const state = () => join(home.home, 'state');
const config = (doc: object) => {
  mkdirSync(join(home.home, 'config'), { recursive: true });
  writeFileSync(join(home.home, 'config', 'config.json'), JSON.stringify(doc));
};

const cli = (args: string[], opts: { tty?: boolean; stdin?: string; env?: Record<string, string> } = {}) =>
  runInProcess(args, { COMPANYCTL_HOME: home.home, ...opts.env }, opts);
const json = async (args: string[], env?: Record<string, string>) => {
  const r = await cli([...args, '--json'], { env });
  if (r.stdout === '') throw new Error(`no output from ${args.join(' ')} (exit ${r.code}): ${r.stderr}`);
  return { ...r, doc: JSON.parse(r.stdout) };
};

/** Ids of the events of one type, oldest first: other audited actions shift ids, so never hard-code one. */
const eventIdsOf = async (type: string): Promise<number[]> => (await json(['audit', '--action', type])).doc.items.map((l: { eventId: number }) => l.eventId);
const newestEventId = async (): Promise<number> => (await json(['events', 'list', '--limit', '1'])).doc.items[0].eventId;

beforeEach(async () => {
  home = tempHome();
  // Backoff long enough that one dispatch run does not retry at once, short enough for a test.
  config({ events: { maxAttempts: 2, backoffSeconds: 0.6 } });
  expect((await cli(['init', '--password-stdin'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
  expect((await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
  for (const [name, domain, country] of [
    ['Acme', 'acme.de', 'DE'],
    ['Globex', 'globex.com', 'US'],
    ['Initech', 'initech.de', 'DE'],
  ]) {
    expect((await cli(['company', 'create', '--name', name!, '--domain', domain!, '--country', country!, '--industry', 'Software'])).code).toBe(0);
  }
  expect((await cli(['company', 'update', 'acme.de', '--employees', '12', '--db', join(home.home, 'data', 'companyctl.db')])).code).toBe(0);
});
afterEach(() => home.cleanup());

describe('after each command that wrote', () => {
  it('every change is delivered at once: one audit line each, with actor, role and the command line', async () => {
    const { doc } = await json(['audit', '--action', 'company.*']);
    expect(doc.items.map((l: { action: string }) => l.action)).toEqual(['company.created', 'company.created', 'company.created', 'company.updated']);
    expect(doc.items[3]).toMatchObject({
      actor: 'admin',
      role: 'admin',
      target: 'company:1',
      diff: { employees: { from: null, to: 12 } },
      command: `companyctl company update acme.de --employees 12 --db ${join(home.home, 'data', 'companyctl.db')}`,
    });
    expect((await json(['events', 'list', '--pending'])).doc.items).toEqual([]);
    expect(statSync(join(state(), 'audit.log')).mode & 0o777).toBe(0o600);
  });

  it('a read-only command does not open the store for events: a cache hit works with the store gone, and is counted', async () => {
    await cli(['company', 'get', '1']);
    const db = join(home.home, 'data', 'companyctl.db');
    renameSync(db, `${db}.away`);
    try {
      const r = await cli(['company', 'get', '1', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
    } finally {
      renameSync(`${db}.away`, db);
    }
    expect(existsSync(join(state(), 'app.log'))).toBe(false);
    // Counted with one appended line; the text file follows at the next render (writes,
    // drains, stats, or a read once the file is a minute old).
    expect(readFileSync(join(state(), 'commands.log'), 'utf8')).toMatch(/^company get\t0\t[\d.]+\ncompany get\t0\t[\d.]+\n$/m);
    await cli(['stats']);
    expect(readFileSync(join(state(), 'companyctl.prom'), 'utf8')).toContain('companyctl_commands_total{command="company get",exit_code="0"} 2');
  });

  it('a failed write records company.write_failed, and every error lands in the JSON app log without secrets', async () => {
    const r = await cli(['company', 'get', '1', '--db', 'postgresql://u:hunter2@127.0.0.1:1/x']);
    expect(r.code).toBe(4);
    const log = readFileSync(join(state(), 'app.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const last = log.at(-1);
    expect(last).toMatchObject({ level: 'warn', code: 'COMPANYCTL_AUTH_REQUIRED', exitCode: 4 });
    expect(JSON.stringify(log)).not.toContain('hunter2');
    expect(last.command).toBe('companyctl company get 1 --db postgresql://u:***@127.0.0.1:1/x');
    expect(statSync(join(state(), 'app.log')).mode & 0o777).toBe(0o600);

    expect((await cli(['company', 'update', '99', '--employees', '3'])).code).toBe(1);
    const { doc } = await json(['audit', '--action', 'company.write_failed']);
    expect(doc.items).toEqual([expect.objectContaining({ target: 'company:99', data: expect.objectContaining({ error: { code: 'COMPANYCTL_NOT_FOUND', message: 'no company with id 99' } }) })]);
    expect(JSON.parse(readFileSync(join(state(), 'app.log'), 'utf8').trim().split('\n').at(-1)!)).toMatchObject({ code: 'COMPANYCTL_NOT_FOUND' });
  });
});

describe('events list | retry | drain', () => {
  async function killAuditLog() {
    // The audit handler cannot open a folder as its log: every delivery to it fails. (The log is
    // put back afterwards: a deleted log is tampering that `audit verify` reports.)
    renameSync(join(state(), 'audit.log'), join(state(), 'audit.log.saved'));
    mkdirSync(join(state(), 'audit.log'));
    const r = await cli(['company', 'create', '--name', 'Hooli', '--domain', 'hooli.com']);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain('dead');
  }

  it('failed deliveries retry, go dead with their last error, and come back with retry', async () => {
    await killAuditLog();
    const hooli = await newestEventId();
    const failed = await json(['events', 'list', '--failed']);
    expect(failed.doc.items).toEqual([expect.objectContaining({ eventId: hooli, type: 'company.created', handler: 'audit', status: 'failed', attempts: 1, lastError: expect.stringContaining('EISDIR') })]);

    const drained = await cli(['events', 'drain', '--wait', '3s', '--json']);
    expect(drained.code).toBe(3);
    // Dead now; the deadEvents alert it raised is an event too, and waits behind the same broken log.
    expect(JSON.parse(drained.stdout)).toMatchObject({ dead: 1, remainingDead: 1, remainingFailed: 1, alerts: [expect.objectContaining({ name: 'deadEvents' })] });

    const dead = await cli(['events', 'list', '--dead']);
    expect(dead.stdout.trim().split('\n').slice(1).map((l) => l.split('\t').slice(0, 6))).toEqual([[String(hooli), 'company.created', '4', 'audit', 'dead', '2']]);
    const tty = await cli(['events', 'list', '--dead'], { tty: true });
    expect(tty.stdout).toMatch(/^eventId\s*type/m);
    expect(tty.stdout).toContain('EISDIR');

    // The alert it raised is an event too; it waits behind the broken audit log.
    const stillBroken = await cli(['events', 'retry', String(hooli), '--json']);
    expect(stillBroken.code).toBe(3);
    expect(JSON.parse(stillBroken.stdout)).toMatchObject({ reset: 1, delivered: 0, failed: 1 });

    rmSync(join(state(), 'audit.log'), { recursive: true });
    renameSync(join(state(), 'audit.log.saved'), join(state(), 'audit.log'));
    await cli(['events', 'drain', '--wait', '3s']);
    const retried = await json(['events', 'retry', '--all-dead']);
    expect(retried.code).toBe(0);
    expect(retried.doc).toMatchObject({ remainingDead: 0, remainingFailed: 0 });
    const audit = (await json(['audit'])).doc.items;
    expect(audit.map((l: { eventId: number }) => l.eventId)).toEqual(expect.arrayContaining([hooli]));
    // Raised while firing; raised again only if the alert's own event went dead behind the broken log first (timing).
    const raised = audit.filter((l: { action: string }) => l.action === 'alert.raised');
    expect(raised.length).toBeGreaterThanOrEqual(1);
    expect(raised.length).toBeLessThanOrEqual(2);
    for (const r of raised) expect(r).toMatchObject({ target: 'alert:deadEvents' });
    expect((await cli(['audit', 'verify'])).code).toBe(0);
    expect((await json(['stats'])).doc.alerts).toEqual([]);
  });

  it('usage errors: both an id and --all-dead, neither, an unknown event, two states', async () => {
    expect((await cli(['events', 'retry'])).code).toBe(2);
    expect((await cli(['events', 'retry', '1', '--all-dead'])).code).toBe(2);
    const unknown = await cli(['events', 'retry', '999', '--json']);
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.stderr).error.code).toBe('COMPANYCTL_NOT_FOUND');
    expect((await cli(['events', 'list', '--dead', '--failed'])).code).toBe(2);
    expect((await cli(['events', 'drain', '--wait', 'soon'])).code).toBe(2);
  });

  it('lists on a TTY, without one, as JSON and as NDJSON; drain on each', async () => {
    const [updated] = await eventIdsOf('company.updated');
    const plain = await cli(['events', 'list', '--event', String(updated)]);
    expect(plain.stdout.trim().split('\n').slice(1).map((l) => l.split('\t').slice(3, 5))).toEqual([
      ['audit', 'done'],
      ['cache', 'done'],
      ['derived', 'done'],
      ['metrics', 'done'],
    ]);
    expect((await cli(['events', 'list', '--limit', '2'], { tty: true })).stdout).toMatch(/^eventId\s+type/m);
    const nd = await cli(['events', 'list', '--ndjson', '--limit', '3']);
    expect(nd.stdout.trim().split('\n').map((l) => JSON.parse(l).eventId)).toEqual([updated, updated, updated]);
    // Four handlers, so four deliveries per event (one audit line each).
    expect((await json(['events', 'list'])).doc.items).toHaveLength((await json(['audit'])).doc.items.length * 4);
    expect((await cli(['events', 'drain'])).stdout).toContain('delivered\t0');
    expect((await cli(['events', 'drain'], { tty: true })).stdout).toMatch(/^delivered\s+0/m);
    expect((await json(['events', 'drain'])).doc).toMatchObject({ delivered: 0, remainingPending: 0 });
  });

  it('with dispatch after commands turned off, events wait for `events drain`', async () => {
    config({ events: { dispatchAfterCommand: false } });
    await cli(['company', 'create', '--name', 'Later', '--domain', 'later.io']);
    const pending = (await json(['events', 'list', '--pending'])).doc.items;
    expect(pending).toEqual([expect.objectContaining({ type: 'company.created', handler: null, status: 'pending' })]);
    expect((await json(['events', 'drain'])).doc).toMatchObject({ fannedOut: 1, delivered: 4, remainingPending: 0 });
    expect((await json(['audit', '--target', '4'])).doc.items).toEqual([expect.objectContaining({ eventId: pending[0].eventId, action: 'company.created' })]);
  });
});

describe('audit', () => {
  it('filters by actor, action, target and time; on a TTY, without one, --json and --ndjson', async () => {
    const token = (await cli(['token', 'create', '--name', 'ci', '--role', 'editor'])).stdout.trim();
    await cli(['company', 'update', 'globex.com', '--employees', '5'], { env: { COMPANYCTL_TOKEN: token } });
    // A user's API tokens act as that user: --actor admin includes "admin (token ci)".
    const byAdmin = (await json(['audit', '--actor', 'admin'])).doc.items;
    expect(byAdmin.filter((l: { action: string }) => l.action.startsWith('company.')).map((l: { actor: string }) => l.actor)).toEqual(['admin', 'admin', 'admin', 'admin', 'admin (token ci)']);
    expect(byAdmin.map((l: { actor: string }) => l.actor)).not.toContain(expect.stringMatching(/^system:/));
    const viaToken = (await json(['audit', '--action', 'company.updated', '--target', 'company:2'])).doc.items;
    expect(viaToken).toEqual([expect.objectContaining({ actor: 'admin (token ci)', role: 'editor' })]);
    const companySeqs = (await json(['audit', '--action', 'company.*'])).doc.items.map((l: { seq: number }) => l.seq);
    expect(companySeqs).toHaveLength(5);
    expect((await json(['audit', '--action', 'company.*', '--limit', '2'])).doc.items.map((l: { seq: number }) => l.seq)).toEqual(companySeqs.slice(-2));
    expect((await json(['audit', '--since', '1h'])).doc.items).toHaveLength((await json(['audit'])).doc.items.length);
    expect((await json(['audit', '--until', '2000-01-01'])).doc.items).toHaveLength(0);
    const nd = await cli(['audit', '--ndjson', '--target', '1']);
    const raw = readFileSync(join(state(), 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(nd.stdout.trim().split('\n').map((l) => JSON.parse(l).hash)).toEqual(raw.filter((l) => l.target === 'company:1').map((l) => l.hash));
    const plain = await cli(['audit', '--target', '1']);
    expect(plain.stdout.split('\n')[2]!.split('\t')).toEqual([
      String(companySeqs[3]),
      expect.any(String),
      'admin',
      'admin',
      'company.updated',
      'company:1',
      'employees: null -> 12',
      expect.stringContaining('companyctl company update acme.de'),
    ]);
    expect((await cli(['audit'], { tty: true })).stdout).toMatch(/^seq\s*time/m);
    expect((await cli(['audit', '--since', 'yesterday-ish'])).code).toBe(2);
    // Reading the audit log is for admins.
    const deny = await cli(['audit', '--json'], { env: { COMPANYCTL_TOKEN: token } });
    expect(deny.code).toBe(4);
    expect(JSON.parse(deny.stderr).error.code).toBe('COMPANYCTL_AUTH_FORBIDDEN');
  });

  it('verify passes on an intact log and names the first broken line (exit 1) after tampering', async () => {
    const ok = await json(['audit', 'verify']);
    expect(ok.code).toBe(0);
    const n = (await json(['audit'])).doc.items.length;
    expect(ok.doc).toMatchObject({ ok: true, entries: n, lines: n, files: 1 });
    expect((await cli(['audit', 'verify'])).stdout).toContain('ok\ttrue');
    expect((await cli(['audit', 'verify'], { tty: true })).stdout).toMatch(/^ok\s+true/m);
    const file = join(state(), 'audit.log');
    const lines = readFileSync(file, 'utf8').split('\n');
    writeFileSync(file, [lines[0], lines[2], lines[1], ...lines.slice(3)].join('\n'));
    const bad = await cli(['audit', 'verify', '--json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, line: 2, seq: 3 });
    expect(JSON.parse(bad.stderr).error).toMatchObject({ code: 'COMPANYCTL_AUDIT_BROKEN', data: { line: 2 } });
    const text = await cli(['audit', 'verify']);
    expect(text.stderr).toContain(`broken at ${file} line 2`);
  });

  it('stats summarises by actor, action and day', async () => {
    const { doc } = await json(['audit', 'stats', '--action', 'company.*']);
    expect(doc).toMatchObject({ lines: 4, byActor: { admin: 4 }, byAction: { 'company.created': 3, 'company.updated': 1 } });
    expect(Object.values(doc.byDay)).toEqual([4]);
    expect((await json(['audit', 'stats'])).doc.byAction).toMatchObject({ 'user.added': 1, 'auth.login': 1, 'company.created': 3 });
    const plain = await cli(['audit', 'stats', '--action', 'company.*']);
    expect(plain.stdout.split('\n').slice(0, 3)).toEqual(['total\tlines\t4', 'actor\tadmin\t4', 'action\tcompany.created\t3']);
    expect((await cli(['audit', 'stats'], { tty: true })).stdout).toMatch(/^by\s*value/m);
  });
});

describe('stats and the metrics file', () => {
  it('shows the dashboard on a TTY, stable lines without one, and JSON', async () => {
    await cli(['company', 'get', '1']);
    await cli(['company', 'get', '1']);
    const { doc } = await json(['stats']);
    expect(doc.companies).toMatchObject({ live: 3, byStatus: { active: 3 }, byCountry: [{ value: 'DE', count: 2 }, { value: 'US', count: 1 }], byIndustry: [{ value: 'Software', count: 3 }] });
    // Every event (company changes, and the init's user.added and the login) reached each handler.
    const n = (await json(['audit'])).doc.items.length;
    expect(n).toBeGreaterThanOrEqual(6);
    expect(doc.events).toMatchObject({ pending: 0, failed: 0, dead: 0, delivered: { audit: n, derived: n, cache: n, metrics: n } });
    expect(doc.cache).toMatchObject({ hits: 1, misses: 1 });
    expect(doc.commands.byCommand).toEqual(expect.arrayContaining([expect.objectContaining({ command: 'company create', count: 3, failed: 0 })]));
    const plain = await cli(['stats']);
    expect(plain.stdout).toContain('companies\tcountry:DE\t2\n');
    expect(plain.stdout).toContain('events\tdead\t0\n');
    const tty = await cli(['stats'], { tty: true });
    expect(tty.stdout).toContain('Companies  3 live');
    expect(tty.stdout).toContain('✓ none');
  });

  it('writes a valid Prometheus text file after every command, atomically, where asked', async () => {
    const prom = readFileSync(join(state(), 'companyctl.prom'), 'utf8');
    expect(checkExposition(prom)).toEqual([]);
    const fams = parsePrometheus(prom) as { name: string; metrics: { value: string; labels?: Record<string, string> }[] }[];
    const created = fams.find((f) => f.name === 'companyctl_commands_total')!.metrics.find((m) => m.labels?.command === 'company create');
    expect(created).toMatchObject({ value: '3', labels: { exit_code: '0' } });
    const elsewhere = join(home.home, 'textfile', 'companyctl.prom');
    await cli(['company', 'get', '1', '--metrics-file', elsewhere]);
    expect(checkExposition(readFileSync(elsewhere, 'utf8'))).toEqual([]);
    expect(readFileSync(elsewhere, 'utf8')).toContain('companyctl_commands_total{command="company get",exit_code="0"} 1');
  });

  it('--check exits 1 while an alert threshold is exceeded, and raises alert.raised once', async () => {
    expect((await cli(['stats', '--check'])).code).toBe(0);
    config({ alerts: { hoursSinceImport: 24 } });
    const r = await cli(['stats', '--check', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).alerts).toEqual([expect.objectContaining({ name: 'hoursSinceImport' })]);
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'COMPANYCTL_ALERTS_FIRING' });
    expect((await cli(['stats', '--check'])).code).toBe(1);
    expect((await cli(['stats', '--check'], { tty: true })).stdout).toContain('✗ hoursSinceImport');
    const raised = (await json(['audit', '--action', 'alert.raised'])).doc.items;
    expect(raised).toEqual([expect.objectContaining({ target: 'alert:hoursSinceImport' })]);
    const prom = readFileSync(join(state(), 'companyctl.prom'), 'utf8');
    expect(prom).toContain('companyctl_alert_firing{alert="hoursSinceImport"} 1');
    config({ alerts: { nonsense: 1 } });
    const bad = await cli(['stats', '--json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stderr).error.code).toBe('COMPANYCTL_CONFIG_INVALID');
  });
});
