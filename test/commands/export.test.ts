// export -o: an existing file needs --force, a planted symlink is never followed, the temp
// file's name cannot be guessed, and a device or pipe is written as it is, never replaced.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, runInProcess, tempHome } from '../helpers.js';

let home: ReturnType<typeof tempHome>;
const cli = (args: string[], opts: { tty?: boolean } = {}) => runInProcess(args, { COMPANYCTL_HOME: home.home }, opts);

beforeAll(async () => {
  home = tempHome();
  expect((await runInProcess(['init', '--password-stdin'], { COMPANYCTL_HOME: home.home }, { stdin: ADMIN_PASSWORD })).code).toBe(0);
  expect((await runInProcess(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], { COMPANYCTL_HOME: home.home }, { stdin: ADMIN_PASSWORD })).code).toBe(0);
  expect((await cli(['company', 'create', '--name', 'Acme', '--domain', 'acme.de'])).code).toBe(0);
});
afterAll(() => home.cleanup());

describe('export -o', () => {
  it('writes a new 0600 file; on a TTY, without one and with --json', async () => {
    for (const [i, opts] of [{ tty: true }, { tty: false }, { json: true }].entries()) {
      const out = join(home.home, `new-${i}.csv`);
      const r = await cli(['export', '-o', out, ...('json' in opts ? ['--json'] : [])], { tty: 'tty' in opts ? opts.tty : false });
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(out, 'utf8')).toContain('acme.de');
      expect(statSync(out).mode & 0o777).toBe(0o600);
      if ('json' in opts) expect(JSON.parse(r.stdout)).toMatchObject({ file: out, companies: 1 });
    }
  });

  it('refuses an existing file unless --force, and leaves it as it was', async () => {
    const out = join(home.home, 'existing.csv');
    writeFileSync(out, 'keep me');
    const r = await cli(['export', '-o', out, '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'COMPANYCTL_FILE_EXISTS', field: '--output' });
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    expect((await cli(['export', '-o', out, '--force'])).code).toBe(0);
    expect(readFileSync(out, 'utf8')).toContain('acme.de');
  });

  it('never writes through a symlink planted at the output or at the old temp name', async () => {
    const victim = join(home.home, 'victim.txt');
    writeFileSync(victim, 'precious');
    const out = join(home.home, 'linked.csv');
    symlinkSync(victim, out);
    symlinkSync(victim, `${out}.partial-${process.pid}`);
    expect((await cli(['export', '-o', out])).code).toBe(2);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    // --force replaces the link itself, not the file it points to.
    expect((await cli(['export', '-o', out, '--force'])).code).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(out).isSymbolicLink()).toBe(false);
    expect(readFileSync(out, 'utf8')).toContain('acme.de');
    // No temp file is left behind, and none had a guessable name.
    expect(readdirSync(home.home).filter((n) => n.includes('.partial') && !n.endsWith(`partial-${process.pid}`))).toEqual([]);
  });

  it('a device is written as it is, never replaced by a file', async () => {
    const r = await cli(['export', '-o', '/dev/null']);
    expect(r.code, r.stderr).toBe(0);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(existsSync('/dev/null')).toBe(true);
    const dir = await cli(['export', '-o', home.home, '--force', '--json']);
    expect(dir.code).toBe(2);
    expect(JSON.parse(dir.stderr).error.code).toBe('COMPANYCTL_FILE_EXISTS');
  });
});
