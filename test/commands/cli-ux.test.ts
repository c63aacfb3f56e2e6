// Discoverability and scripting: help <command>, group examples, global flags in subcommand
// help, shell completion, the config view, --json usage errors, cursors that carry their sort,
// restore by any reference, and control characters refused on input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, runInProcess, tempHome } from '../helpers.js';

let home: ReturnType<typeof tempHome>;
let env: Record<string, string>;
const cli = (args: string[], opts: { tty?: boolean; stdin?: string } = {}, extra: Record<string, string> = {}) => runInProcess(args, { ...env, ...extra }, opts);

beforeAll(async () => {
  home = tempHome();
  env = { COMPANYCTL_HOME: home.home };
  expect((await cli(['init', '--password-stdin'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
  expect((await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], { stdin: ADMIN_PASSWORD })).code).toBe(0);
});
afterAll(() => home.cleanup());

describe('help', () => {
  it('"help <command>" prints what "<command> --help" prints, for nested commands too', async () => {
    const viaHelp = await cli(['help', 'company', 'list']);
    const viaFlag = await cli(['company', 'list', '--help']);
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toBe(viaFlag.stdout);
    expect(viaHelp.stdout).toContain('Usage: companyctl company list');
    expect((await cli(['help'])).stdout).toContain('companyctl help <command>');
  });

  it('every group has examples; subcommand help shows the global flags', async () => {
    for (const group of ['company', 'auth', 'token', 'user', 'db', 'cache', 'webhook', 'events', 'import', 'audit']) {
      const r = await cli([group, '--help']);
      expect(r.stdout, group).toMatch(/Examples?:\n {2}companyctl /);
    }
    const sub = await cli(['company', 'get', '--help']);
    expect(sub.stdout).toContain('Global Options:');
    expect(sub.stdout).toContain('--no-color');
  });
});

describe('completion', () => {
  it('bash: commands, subcommands, flags and --format values, from the real command tree', async () => {
    const r = await cli(['completion', 'bash']);
    expect(r.code).toBe(0);
    const file = join(home.home, 'c.bash');
    writeFileSync(file, r.stdout);
    const complete = (...words: string[]) => {
      const script = `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _companyctl; echo "\${COMPREPLY[*]}"`;
      const out = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
      expect(out.stderr).toBe('');
      return out.stdout.trim().split(/\s+/);
    };
    expect(complete('companyctl', 'comp')).toEqual(['company', 'completion']);
    expect(complete('companyctl', 'company', 'l')).toEqual(['list']);
    expect(complete('companyctl', '--db', 'x.db', 'company', 'get', '--f')).toEqual(['--fresh', '--fields']);
    expect(complete('companyctl', 'export', '--format', '')).toEqual(['csv', 'ndjson', 'json']);
    expect(complete('companyctl', 'events', '')).toEqual(expect.arrayContaining(['list', 'retry', 'drain', '--json']));
  });

  it('zsh and fish scripts; an unknown shell is a usage error', async () => {
    expect((await cli(['completion', 'zsh'])).stdout).toContain('bashcompinit');
    const fish = (await cli(['completion', 'fish'])).stdout;
    expect(fish).toContain(`complete -c companyctl -n "__companyctl_at 'export'" -l 'format' -x -a 'csv ndjson json'`);
    expect(fish).toContain(`-n "__companyctl_at 'company'" -a 'list'`);
    expect((await cli(['completion', 'powershell'])).code).toBe(2);
  });
});

describe('config', () => {
  it('lists every path in use and every setting, with where each came from', async () => {
    const metrics = join(home.home, 'm.prom');
    const r = await cli(['config', '--json', '--metrics-file', metrics]);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as { setting: string; value: unknown; source: string }[];
    const row = (s: string) => rows.find((x) => x.setting === s);
    for (const s of ['config file', 'store', 'cache folder', 'state folder', 'audit log', 'app log', 'metrics file']) expect(row(s), s).toBeDefined();
    expect(row('store')).toMatchObject({ value: join(home.home, 'data', 'companyctl.db'), source: 'COMPANYCTL_HOME' });
    expect(row('metrics file')).toMatchObject({ value: metrics, source: '--metrics-file' });
    const viaEnv = JSON.parse((await cli(['config', '--json'], {}, { COMPANYCTL_DB: join(home.home, 'other.db') })).stdout) as typeof rows;
    expect(viaEnv.find((x) => x.setting === 'store')).toMatchObject({ source: 'COMPANYCTL_DB' });
  });

  it('takes values from the config file and says so; prints a table, and lines with a header', async () => {
    const cfg = join(home.home, 'cfg.json');
    writeFileSync(cfg, JSON.stringify({ sessionCacheSeconds: 5 }));
    const plain = await cli(['config', '--config', cfg]);
    expect(plain.stdout.split('\n')[0]).toBe('setting\tvalue\tsource');
    expect(plain.stdout).toContain('sessionCacheSeconds\t5\tconfig file\n');
    expect(plain.stdout).toContain(`config file\t${cfg}\t--config\n`);
    const tty = await cli(['config'], { tty: true });
    expect(tty.stdout).toMatch(/^setting\s+value\s+source$/m);
  });
});

describe('usage errors under --json', () => {
  it('carry the suggestion in a field of its own, not in the message', async () => {
    const r = await cli(['company', 'lst', '--json']);
    expect(r.code).toBe(2);
    const e = JSON.parse(r.stderr).error;
    expect(e).toMatchObject({ code: 'COMPANYCTL_USAGE', message: "unknown command 'lst'", suggestion: 'list' });
    const o = JSON.parse((await cli(['company', 'list', '--sortt', 'x', '--json'])).stderr).error;
    expect(o).toMatchObject({ message: "unknown option '--sortt'", suggestion: '--sort' });
  });
});

describe('import flags', () => {
  it('bad --chunk-size, --encoding and --map values are usage errors before any job exists', async () => {
    const file = join(home.home, 'flags.csv');
    writeFileSync(file, 'name,domain\nAcme,acme.example\n');
    for (const bad of [['--chunk-size', '0'], ['--chunk-size', '1000001'], ['--chunk-size', '1e3'], ['--encoding', 'bogus'], ['--map', '==']]) {
      const r = await cli(['import', file, ...bad, '--json']);
      expect(r.code, bad.join(' ')).toBe(2);
      expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'COMPANYCTL_USAGE', field: bad[0] });
    }
    expect(JSON.parse((await cli(['import', 'list', '--json'])).stdout).items).toEqual([]);
  });
});

describe('companies', () => {
  it('a cursor carries its sort: the next page needs no --sort', async () => {
    for (const name of ['A1', 'B2', 'C3']) expect((await cli(['company', 'create', '--name', name])).code).toBe(0);
    const first = JSON.parse((await cli(['company', 'list', '--sort', '-name', '--limit', '2', '--json'])).stdout);
    expect(first.items.map((c: { name: string }) => c.name)).toEqual(['C3', 'B2']);
    const next = await cli(['company', 'list', '--cursor', first.nextCursor, '--json']);
    expect(next.code, next.stderr).toBe(0);
    expect(JSON.parse(next.stdout).items.map((c: { name: string }) => c.name)).toEqual(['A1']);
    expect((await cli(['company', 'list', '--cursor', first.nextCursor, '--sort', 'id'])).code).toBe(2);
    expect((await cli(['company', 'list', '--cursor', 'bm9wZQ'])).code).toBe(2);
  });

  it('restore takes the references get takes (domain), and says which ids when several match', async () => {
    expect((await cli(['company', 'create', '--name', 'R1', '--domain', 'restore-me.de'])).code).toBe(0);
    expect((await cli(['company', 'delete', 'restore-me.de'])).code).toBe(0);
    const r = await cli(['company', 'restore', 'restore-me.de', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ domain: 'restore-me.de', deletedAt: null });
    expect(JSON.parse((await cli(['company', 'restore', 'restore-me.de', '--json'])).stderr).error.code).toBe('COMPANYCTL_NOT_DELETED');
    expect((await cli(['company', 'delete', 'restore-me.de'])).code).toBe(0);
    expect((await cli(['company', 'create', '--name', 'R2', '--domain', 'restore-me.de'])).code).toBe(0);
    expect((await cli(['company', 'delete', 'restore-me.de'])).code).toBe(0);
    const two = await cli(['company', 'restore', 'restore-me.de', '--json']);
    expect(two.code).toBe(2);
    expect(JSON.parse(two.stderr).error.data.ids).toHaveLength(2);
    expect(JSON.parse((await cli(['company', 'restore', 'nobody.example', '--json'])).stderr).error.code).toBe('COMPANYCTL_NOT_FOUND');
  });

  it('control characters are refused in external ids (every list element), and never printed raw', async () => {
    const doc = JSON.stringify({ name: 'Esc Co', externalIds: [{ source: 'crm', id: 'x\u001b[31mRED' }] });
    const r = await cli(['company', 'create', '--from-json', '-', '--json'], { stdin: doc });
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr).error.message).toContain('control characters');
    const t = await cli(['company', 'create', '--name', 'Tag Co', '--tag', 'a\u0007b', '--json']);
    expect(t.code).toBe(2);
  });
});

/** A terminal user: answers in turn; an answer the prompt's validate refuses is typed again with the next one. */
function typist(answers: string[]) {
  const refused: string[] = [];
  const asked: string[] = [];
  const next = async (message: string, opts: { validate?: (v: string) => true | string } = {}) => {
    asked.push(message);
    for (;;) {
      const a = answers.shift();
      if (a === undefined) throw new Error(`no answer left for ${message}`);
      const ok = opts.validate ? opts.validate(a) : true;
      if (ok === true) return a;
      refused.push(`${a}: ${ok}`);
    }
  };
  return { canPrompt: true, asked, refused, input: next, password: next, confirm: async () => true };
}

describe('prompts', () => {
  it('check each answer as it is typed: a country name is taken, a bad one asked again', async () => {
    const t = typist(['Prompted Co', 'not a domain', 'prompted.example', 'Narnia', 'Germany']);
    const r = await runInProcess(['company', 'create', '--json'], env, { tty: true, prompter: t });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'Prompted Co', domain: 'prompted.example', country: 'DE' });
    expect(t.refused).toHaveLength(2);
  });

  it('password rules are shown up front and a weak password is asked again, not refused at the end', async () => {
    const t = typist(['short', 'a-long-enough-passphrase', 'a-different-one-entirely', 'a-long-enough-passphrase']);
    const r = await runInProcess(['user', 'add', 'carol', '--role', 'viewer'], env, { tty: true, prompter: t });
    expect(r.code, r.stderr).toBe(0);
    expect(t.asked[0]).toContain('at least 12 characters');
    expect(t.refused).toEqual([expect.stringContaining('at least 12'), expect.stringContaining('differ')]);
  });
});
