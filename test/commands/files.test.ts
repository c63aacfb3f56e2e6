// Files the user names: a missing folder, a read-only folder and a full disk end in our typed
// error (code, exit status, the path and the reason), never a stack trace or a silent exit 0.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, runInProcess, tempHome } from '../helpers.js';

let home: ReturnType<typeof tempHome>;
let env: Record<string, string>;
const cli = (args: string[], extra: Record<string, string> = {}) => runInProcess(args, { ...env, ...extra });
const errorOf = (r: { stderr: string }) => JSON.parse(r.stderr.trim().split('\n').pop()!).error as { code: string; message: string; field?: string };

/** A folder this process cannot write: /sys for root (permissions do not stop root), else a 0555 folder. */
function readOnlyDir(): string {
  if (process.getuid?.() === 0) return '/sys';
  const d = join(home.home, 'read-only');
  mkdirSync(d, { recursive: true });
  chmodSync(d, 0o555);
  return d;
}

beforeAll(async () => {
  home = tempHome();
  env = { COMPANYCTL_HOME: home.home };
  expect((await runInProcess(['init', '--password-stdin'], env, { stdin: ADMIN_PASSWORD })).code).toBe(0);
  expect((await runInProcess(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], env, { stdin: ADMIN_PASSWORD })).code).toBe(0);
  expect((await cli(['company', 'create', '--name', 'Acme', '--domain', 'acme.de'])).code).toBe(0);
});
afterAll(() => home.cleanup());

describe('export -o', () => {
  it('a missing folder: exit 1, COMPANYCTL_FILE_UNWRITABLE naming the flag and the folder', async () => {
    const target = join(home.home, 'no', 'such', 'x.csv');
    const r = await cli(['export', '-o', target, '--json']);
    expect(r.code).toBe(1);
    const e = errorOf(r);
    expect(e.code).toBe('COMPANYCTL_FILE_UNWRITABLE');
    expect(e.field).toBe('--output');
    expect(e.message).toContain(join(home.home, 'no', 'such'));
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a read-only folder: exit 1, permission denied, nothing left behind', async () => {
    const dir = readOnlyDir();
    const r = await cli(['export', '-o', join(dir, 'x.csv')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--output: cannot write .*x\.csv: permission denied/);
  });

  it.skipIf(!existsSync('/dev/full'))('a full disk (/dev/full): exit 1 with the reason, not exit 0', async () => {
    const r = await cli(['export', '-o', '/dev/full', '--json']);
    expect(r.code).toBe(1);
    // A full disk is its own error with a hint (issue 16).
    expect(errorOf(r).code).toBe('COMPANYCTL_DISK_FULL');
    expect(errorOf(r).message).toContain('no space left');
    expect(statSync('/dev/full').isCharacterDevice()).toBe(true);
  });

  it('a folder as the target: a usage error; a good path still works and leaves no partial file', async () => {
    expect((await cli(['export', '-o', home.home])).code).toBe(2);
    const out = join(home.home, 'out');
    mkdirSync(out);
    const r = await cli(['export', '-o', join(out, 'x.csv')]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out)).toEqual(['x.csv']);
  });
});

describe('other files the user names', () => {
  it('a cache folder that cannot be created: typed error, exit 1', async () => {
    const r = await cli(['company', 'get', '1', '--json'], { COMPANYCTL_CACHE_DIR: join(readOnlyDir(), 'cache') });
    expect(r.code).toBe(1);
    expect(errorOf(r).code).toBe('COMPANYCTL_FILE_UNWRITABLE');
  });

  it('a store under a read-only folder: typed error at init', async () => {
    const r = await runInProcess(['init', '--password-stdin', '--json'], { COMPANYCTL_HOME: join(readOnlyDir(), 'home') }, { stdin: ADMIN_PASSWORD });
    expect(r.code).toBe(1);
    expect(errorOf(r).code).toBe('COMPANYCTL_FILE_UNWRITABLE');
  });

  it('a config path that is a folder or bad JSON: COMPANYCTL_CONFIG_INVALID', async () => {
    expect(errorOf(await cli(['company', 'list', '--json', '--config', home.home])).code).toBe('COMPANYCTL_CONFIG_INVALID');
    const bad = join(home.home, 'bad.json');
    writeFileSync(bad, '{');
    expect(errorOf(await cli(['company', 'list', '--json', '--config', bad])).code).toBe('COMPANYCTL_CONFIG_INVALID');
  });

  it('a metrics file that cannot be written: the command succeeds and says why on stderr', async () => {
    const r = await cli(['company', 'create', '--name', 'Metrics Co', '--metrics-file', join(readOnlyDir(), 'm.prom')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: metrics: cannot .*permission denied/);
  });

  it('a flag value out of range is a usage error (exit 2), not an internal error', async () => {
    for (const v of ['999999999d', '99999999999999999999w', '2026-02-30', '0000-01-01']) {
      const r = await cli(['company', 'list', '--updated-since', v, '--json']);
      expect(r.code, v).toBe(2);
      expect(errorOf(r).field).toBe('--updated-since');
    }
    expect((await cli(['audit', '--since', '1e9d'])).code).toBe(2);
    expect((await cli(['token', 'create', '--name', 'n', '--expires', '400d'])).code).toBe(2);
    expect((await cli(['events', 'drain', '--wait', '30d'])).code).toBe(2);
  });
});
