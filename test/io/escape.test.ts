// Terminal escapes from input files never reach the terminal raw: notices and errors (human
// and --json) show them as visible \u escapes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { escapeControl, terminalSafeJson } from '../../src/io/escape.js';
import { ADMIN_PASSWORD, runInProcess, tempHome } from '../helpers.js';

const EVIL = '\u001b[2J\u001b]0;pwned\u0007\u009b31m';
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('escapeControl', () => {
  it('shows control characters, keeps text, tabs and (unless one line) newlines', () => {
    expect(escapeControl(`a${EVIL}b`)).toBe('a\\u001b[2J\\u001b]0;pwned\\u0007\\u009b31mb');
    expect(escapeControl('a\tb\nc\rd')).toBe('a\tb\nc\\u000dd');
    expect(escapeControl('a\nb', { oneLine: true })).toBe('a\\u000ab');
    expect(escapeControl('Zürich – 東京')).toBe('Zürich – 東京');
  });

  it('terminal-safe JSON means the same and carries no raw C1 or DEL', () => {
    const s = terminalSafeJson({ m: `x${EVIL}\u007f\u2028` });
    expect(s).not.toMatch(RAW);
    expect(JSON.parse(s)).toEqual({ m: `x${EVIL}\u007f\u2028` });
  });
});

describe('input echoed by commands', () => {
  let home: ReturnType<typeof tempHome>;
  const cli = (args: string[], stdin?: string) => runInProcess(args, { COMPANYCTL_HOME: home.home }, { stdin });
  beforeAll(async () => {
    home = tempHome();
    expect((await cli(['init', '--password-stdin'], ADMIN_PASSWORD)).code).toBe(0);
    expect((await cli(['login', '-u', 'admin', '--password-stdin', '--insecure-storage'], ADMIN_PASSWORD)).code).toBe(0);
  });
  afterAll(() => home.cleanup());

  it('an unknown CSV column holding escapes is escaped in the notice, also in --dry-run', async () => {
    const file = join(home.home, 'evil.csv');
    writeFileSync(file, `name,domain,${EVIL}\nAcme,acme.de,x\n`);
    for (const extra of [[], ['--dry-run']]) {
      const r = await cli(['import', file, ...extra]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('\\u001b[2J');
      expect(r.stderr).not.toMatch(RAW);
    }
  });

  it('an NDJSON key holding escapes is escaped too', async () => {
    const file = join(home.home, 'evil.ndjson');
    writeFileSync(file, `${JSON.stringify({ name: 'Beta', domain: 'beta.de', [EVIL]: 1 })}\n`);
    const r = await cli(['import', file, '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(RAW);
    expect(r.stdout + r.stderr).toContain('\\u001b[2J');
  });

  it('errors echoing input are escaped, as text and as JSON', async () => {
    const file = join(home.home, `${EVIL}.csv`);
    for (const json of [[], ['--json']]) {
      const r = await cli(['import', file, ...json]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).not.toMatch(RAW);
      const g = await cli(['company', 'get', `a${EVIL}.de`, ...json]);
      expect(g.code).not.toBe(0);
      expect(g.stderr).not.toMatch(RAW);
    }
  });
});
