// Each company command run in-process through runCli: on a TTY, without one, and with --json.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Prompter } from '../../src/io/prompter.js';
import { ADMIN_PASSWORD, runInProcess, tempHome } from '../helpers.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let home: ReturnType<typeof tempHome>;
beforeEach(async () => {
  home = tempHome();
  expect((await cli(['init', '--password-stdin'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
  expect((await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
});
afterEach(() => home.cleanup());

/** A prompter that answers from a script and records the questions. */
function scripted(answers: (string | boolean)[]): Prompter & { asked: string[] } {
  const asked: string[] = [];
  return {
    canPrompt: true,
    asked,
    input: async (m) => (asked.push(m), String(answers.shift() ?? '')),
    confirm: async (m) => (asked.push(m), Boolean(answers.shift())),
    password: async (m) => (asked.push(m), String(answers.shift() ?? '')),
  };
}

const cli = (args: string[], opts: { tty?: boolean; stdin?: string; prompter?: Prompter } = {}): Promise<Run> =>
  runInProcess(args, { COMPANYCTL_HOME: home.home }, opts);

const create = async (...flags: string[]) => JSON.parse((await cli(['company', 'create', '--json', ...flags])).stdout);

describe('company create', () => {
  it('without a TTY, a missing name is an error naming the flag (exit 2)', async () => {
    const r = await cli(['company', 'create', '--domain', 'a.com']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('pass --name');
  });

  it('on a TTY, asks for the missing fields and prints a table', async () => {
    const prompter = scripted(['Prompted Ltd', 'prompted.co.uk', 'gb']);
    const r = await cli(['company', 'create'], { tty: true, prompter });
    expect(r.code).toBe(0);
    expect(prompter.asked[0]).toBe('Company name');
    expect(r.stdout).toMatch(/^domain\s+prompted\.co\.uk/m);
    expect(r.stdout).toMatch(/^country\s+GB/m);
  });

  it('--json prints the created company; --from-json - reads stdin, flags win', async () => {
    const r = await cli(['company', 'create', '--json', '--from-json', '-', '--employees', '7'], { stdin: '{"name":"Doc","domain":"doc.io","employees":3}' });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: 1, name: 'Doc', domain: 'doc.io', employees: 7, version: 1 });
  });

  it('--json errors are one JSON document on stderr with code, message and hint', async () => {
    const r = await cli(['company', 'create', '--json', '--name', 'X', '--country', 'XX']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const err = JSON.parse(r.stderr).error;
    expect(err).toMatchObject({ code: 'COMPANYCTL_INVALID_INPUT', field: 'country', message: 'country: "XX" is not a country (an ISO 3166-1 code such as DE or DEU, or an English name)' });
    expect(err).toHaveProperty('hint');
  });

  it('a duplicate says which company holds the key (exit 1)', async () => {
    await create('--name', 'A', '--domain', 'a.com');
    const r = await cli(['company', 'create', '--name', 'B', '--domain', 'https://www.A.com']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('domain a.com is already held by company 1');
  });
});

describe('company get', () => {
  beforeEach(async () => {
    await create('--name', 'Acme', '--domain', 'acme.de', '--lei', '529900T8BM49AURSDO55', '--registration-country', 'DE', '--registration-number', 'HRB 1');
  });

  it.each([['1'], ['acme.de'], ['529900T8BM49AURSDO55'], ['DE:HRB 1']])('finds %s (--json)', async (ref) => {
    const r = await cli(['company', 'get', ref, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: 1, name: 'Acme' });
  });

  it('without a TTY prints stable field<TAB>value lines; --fields picks', async () => {
    const r = await cli(['company', 'get', '1', '--fields', 'id,name,domain']);
    expect(r.stdout).toBe('id\t1\nname\tAcme\ndomain\tacme.de\n');
  });

  it('on a TTY prints a table', async () => {
    const r = await cli(['company', 'get', '1'], { tty: true });
    expect(r.stdout).toMatch(/^id\s+\d+$/m);
    expect(r.stdout).toMatch(/^name\s+Acme/m);
  });

  it('an unknown company exits 1 with COMPANYCTL_NOT_FOUND', async () => {
    const r = await cli(['company', 'get', '99', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr).error.code).toBe('COMPANYCTL_NOT_FOUND');
  });

  it('unknown flags and missing arguments exit 2 with usage', async () => {
    const a = await cli(['company', 'get', '1', '--bogus']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("unknown option '--bogus'");
    expect(a.stderr).toContain('usage: companyctl company get [options] <ref>');
    const b = await cli(['company', 'get', '--json']);
    expect(b.code).toBe(2);
    expect(JSON.parse(b.stderr).error).toMatchObject({ code: 'COMPANYCTL_USAGE' });
    const c = await cli(['company', 'get', 'not a ref']);
    expect(c.code).toBe(2);
  });
});

describe('company list', () => {
  it('--updated-since refuses a day that does not exist, as --incorporation-date does (exit 2)', async () => {
    for (const args of [
      ['company', 'list', '--updated-since', '2024-02-30', '--json'],
      ['export', '--updated-since', '2024-02-30', '--json'],
      ['company', 'create', '--name', 'X', '--incorporation-date', '2024-02-30', '--json'],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(JSON.parse(r.stderr).error.message).toMatch(/2024-02-30/);
    }
    expect((await cli(['company', 'list', '--updated-since', '2024-02-29', '--json'])).code).toBe(0);
  });

  beforeEach(async () => {
    for (const [name, country] of [['Beta', 'DE'], ['alpha', 'FR'], ['Gamma', 'DE']]) await create('--name', name, '--country', country, '--tag', 'x');
  });

  it('without a TTY prints a header line and tab-separated rows of the chosen fields', async () => {
    const r = await cli(['company', 'list', '--sort', 'name', '--fields', 'name,country']);
    expect(r.stdout).toBe('name\tcountry\nalpha\tFR\nBeta\tDE\nGamma\tDE\n');
  });

  it('on a TTY prints a table with a header', async () => {
    const r = await cli(['company', 'list', '--country', 'de'], { tty: true });
    expect(r.stdout).toMatch(/^id\s+name/m);
    expect(r.stdout).toContain('Gamma');
    expect(r.stdout).not.toContain('alpha');
  });

  it('--json gives items and a cursor that continues the list', async () => {
    const p1 = JSON.parse((await cli(['company', 'list', '--json', '--limit', '2', '--fields', 'id'])).stdout);
    expect(p1.items).toEqual([{ id: 1 }, { id: 2 }]);
    const p2 = JSON.parse((await cli(['company', 'list', '--json', '--limit', '2', '--fields', 'id', '--cursor', p1.nextCursor])).stdout);
    expect(p2).toEqual({ items: [{ id: 3 }], nextCursor: null });
  });

  it('--ndjson streams one object a line', async () => {
    const r = await cli(['company', 'list', '--ndjson', '--fields', 'id,name']);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { id: 1, name: 'Beta' },
      { id: 2, name: 'alpha' },
      { id: 3, name: 'Gamma' },
    ]);
  });

  it('bad filter values name the flag', async () => {
    const r = await cli(['company', 'list', '--status', 'sleeping', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr).error.field).toBe('--status');
  });
});

describe('company update, delete, restore', () => {
  beforeEach(async () => {
    await create('--name', 'Acme', '--domain', 'acme.de', '--legal-name', 'Acme GmbH');
  });

  it('updates, clears a field with an empty value, and honours --if-version', async () => {
    const r = await cli(['company', 'update', 'acme.de', '--employees', '12', '--legal-name', '', '--if-version', '1', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ employees: 12, legalName: null, version: 2 });
    const stale = await cli(['company', 'update', '1', '--employees', '13', '--if-version', '1', '--json']);
    expect(stale.code).toBe(1);
    expect(JSON.parse(stale.stderr).error.code).toBe('COMPANYCTL_VERSION_CONFLICT');
  });

  it('an update with nothing to change is a usage error', async () => {
    expect((await cli(['company', 'update', '1'])).code).toBe(2);
  });

  it('soft delete then restore; get says deleted in between', async () => {
    const d = await cli(['company', 'delete', '1', '--json']);
    expect(JSON.parse(d.stdout)).toMatchObject({ id: 1, deleted: 'soft' });
    const g = await cli(['company', 'get', '1']);
    expect(g.code).toBe(1);
    expect(g.stderr).toContain('is deleted');
    expect((await cli(['company', 'list', '--deleted', '--fields', 'id'])).stdout).toBe('id\n1\n');
    const r = await cli(['company', 'restore', '1', '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: 1, deletedAt: null, version: 3 });
  });

  it('--hard needs --yes without a TTY, asks on a TTY, and a "no" deletes nothing (exit 1, not a cancellation)', async () => {
    const noTty = await cli(['company', 'delete', '1', '--hard', '--json']);
    expect(noTty.code).toBe(2);
    expect(JSON.parse(noTty.stderr).error.code).toBe('COMPANYCTL_CONFIRMATION_REQUIRED');
    const no = scripted([false]);
    const declined = await cli(['company', 'delete', '1', '--hard'], { tty: true, prompter: no });
    expect(declined.code).toBe(1);
    expect(declined.stderr).toContain('not confirmed');
    expect(no.asked[0]).toContain('cannot be undone');
    expect((await cli(['company', 'get', '1', '--fresh'])).code).toBe(0);
    const yes = await cli(['company', 'delete', '1', '--hard', '--yes']);
    expect(yes.code).toBe(0);
    expect((await cli(['company', 'list', '--include-deleted'])).stdout).toBe('id\tname\tdomain\tcountry\tindustry\tstatus\tupdatedAt\n');
  });
});

describe('db and cache commands', () => {
  it('db status --json reports a ready store; init twice is refused', async () => {
    const s = await cli(['db', 'status', '--json']);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ dialect: 'sqlite', state: 'ready', pending: [], unknown: [] });
    const again = await cli(['init', '--json', '--password-stdin'], { stdin: ADMIN_PASSWORD });
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stderr).error.code).toBe('COMPANYCTL_ALREADY_INITIALISED');
  });

  it('db migrate is a no-op on a current store', async () => {
    const m = await cli(['db', 'migrate', '--json']);
    expect(JSON.parse(m.stdout)).toMatchObject({ migrationsApplied: [] });
  });

  it('cache stats counts hits and misses; cache clear empties it', async () => {
    await create('--name', 'Acme');
    const stats = async () => JSON.parse((await cli(['cache', 'stats', '--json'])).stdout);
    const before = (await stats()).entries; // the login's public key and session state
    await cli(['company', 'get', '1']);
    await cli(['company', 'get', '1']);
    expect(await stats()).toMatchObject({ entries: before + 1, hits: 1, misses: 1, hitRate: 0.5 });
    expect(JSON.parse((await cli(['cache', 'clear', '--json'])).stdout)).toEqual({ removed: before + 1 });
    // The clear itself ran after the login was checked; the stats call re-caches login state only.
    expect(await stats()).toMatchObject({ hits: 0, misses: 0 });
    expect((await stats()).entries).toBeLessThanOrEqual(before);
    const tty = await cli(['cache', 'stats'], { tty: true });
    expect(tty.stdout).toMatch(/^entries\s+\d+/m);
  });

  it('--no-cache neither reads nor fills the cache', async () => {
    await create('--name', 'Acme');
    const stats = async () => JSON.parse((await cli(['cache', 'stats', '--json'])).stdout);
    const before = (await stats()).entries;
    await cli(['company', 'get', '1', '--no-cache']);
    expect(await stats()).toMatchObject({ entries: before, hits: 0, misses: 0 });
  });

  it('a command on a store that does not exist says to run init', async () => {
    const r = await cli(['db', 'status', '--json', '--db', `${home.home}/nope.db`]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ state: 'not-initialised' });
    const l = await cli(['company', 'list', '--json', '--db', `${home.home}/nope.db`]);
    expect(l.code).toBe(4); // no login for a store that does not exist
  });
});
