// The audit log file: hash chain, tamper detection, rotation, crash tails, permissions, and
// secrets kept out of the command line.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog, GENESIS, type AuditEntry } from '../../src/infra/audit-log.js';
import { redactArgv, redactText } from '../../src/services/audit-redact.js';
import { tempHome } from '../helpers.js';

let home: ReturnType<typeof tempHome>;
beforeEach(() => (home = tempHome()));
afterEach(() => home.cleanup());

const entry = (i: number): AuditEntry => ({
  time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
  actor: i % 2 ? 'alice' : 'bob',
  role: 'editor',
  action: 'company.updated',
  target: `company:${i}`,
  eventId: i,
  command: `companyctl company update ${i} --employees ${i}`,
  diff: { employees: { from: null, to: i } },
});

function logWith(n: number, maxBytes?: number): AuditLog {
  const log = new AuditLog(join(home.home, 'state'), maxBytes);
  for (let i = 1; i <= n; i++) log.append([entry(i)]);
  return log;
}

const lines = (log: AuditLog) => readFileSync(log.current, 'utf8').split('\n').filter(Boolean);
const rewrite = (log: AuditLog, ls: string[]) => writeFileSync(log.current, `${ls.join('\n')}\n`);

describe('audit log', () => {
  it('chains every line to the one before, starting from the genesis hash; the file is 0600 in a 0700 folder', () => {
    const log = logWith(5);
    const parsed = lines(log).map((l) => JSON.parse(l));
    expect(parsed.map((p) => p.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(parsed[0].prev).toBe(GENESIS);
    for (let i = 1; i < 5; i++) expect(parsed[i].prev).toBe(parsed[i - 1].hash);
    expect(Object.keys(parsed[0])).toEqual(['seq', 'time', 'actor', 'role', 'action', 'target', 'eventId', 'command', 'diff', 'prev', 'hash']);
    expect(statSync(log.current).mode & 0o777).toBe(0o600);
    expect(statSync(log.dir).mode & 0o777).toBe(0o700);
    expect(log.verify()).toMatchObject({ ok: true, lines: 5, firstSeq: 1, lastHash: parsed[4].hash });
  });

  it('names the line whose byte was changed', () => {
    const log = logWith(5);
    const ls = lines(log);
    ls[2] = ls[2]!.replace('"employees":{"from":null,"to":3}', '"employees":{"from":null,"to":4}');
    rewrite(log, ls);
    expect(log.verify()).toMatchObject({ ok: false, line: 3, seq: 3, file: log.current });
  });

  it('names the line of a single changed byte, wherever it is in the line', () => {
    const log = logWith(4);
    const original = readFileSync(log.current);
    const at = original.indexOf('\n') + 1 + 40; // 40 bytes into line 2
    for (const offset of [at, at + 17, original.indexOf('\n', at) - 3]) {
      const bytes = Buffer.from(original);
      bytes[offset] = bytes[offset] === 0x41 ? 0x42 : 0x41;
      writeFileSync(log.current, bytes);
      expect(log.verify()).toMatchObject({ ok: false, line: 2 });
    }
  });

  it('names the line after a deleted line, and the first line when the chain start is deleted', () => {
    const log = logWith(5);
    const ls = lines(log);
    rewrite(log, [ls[0]!, ls[1]!, ls[3]!, ls[4]!]);
    expect(log.verify()).toMatchObject({ ok: false, line: 3, seq: 4 });
    rewrite(log, ls.slice(1));
    expect(log.verify()).toMatchObject({ ok: false, line: 1, seq: 2 });
  });

  it('names the first of two swapped lines', () => {
    const log = logWith(5);
    const ls = lines(log);
    rewrite(log, [ls[0]!, ls[2]!, ls[1]!, ls[3]!, ls[4]!]);
    expect(log.verify()).toMatchObject({ ok: false, line: 2, seq: 3 });
  });

  it('catches a changed hash and a line that is not an audit line', () => {
    const log = logWith(3);
    const ls = lines(log);
    rewrite(log, [ls[0]!, ls[1]!.replace(/"hash":"(.)/, (_m, c) => `"hash":"${c === 'a' ? 'b' : 'a'}`), ls[2]!]);
    expect(log.verify()).toMatchObject({ ok: false, line: 2 });
    rewrite(log, [ls[0]!, 'hello', ls[2]!]);
    expect(log.verify()).toMatchObject({ ok: false, line: 2, reason: expect.stringContaining('not an audit line') });
  });

  it('rotates by size without breaking the chain; removing the oldest rotated file still verifies from there', () => {
    const log = logWith(40, 4096);
    const files = log.files();
    expect(files.length).toBeGreaterThan(2);
    expect(files.at(-1)).toBe(log.current);
    expect(files[0]).toMatch(/audit\.log\.1$/);
    for (const f of files) expect(statSync(f).size).toBeLessThanOrEqual(4096);
    expect(log.verify()).toMatchObject({ ok: true, lines: 40, firstSeq: 1 });
    expect([...log.entries()].map((e) => e.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // The first line of a newer file chains to the last line of the file before it.
    const firstOfSecond = JSON.parse(readFileSync(files[1]!, 'utf8').split('\n')[0]!);
    const lastOfFirst = JSON.parse(readFileSync(files[0]!, 'utf8').trim().split('\n').at(-1)!);
    expect(firstOfSecond.prev).toBe(lastOfFirst.hash);
    // Retention: the oldest rotated file removed; the rest still verifies, from a later seq.
    rmSync(files[0]!);
    const r = log.verify();
    expect(r).toMatchObject({ ok: true });
    expect(r.ok && r.firstSeq).toBeGreaterThan(1);
  });

  it('cuts a partial last line left by a crash and goes on chaining from the last whole line', () => {
    const log = logWith(3);
    appendFileSync(log.current, '{"seq":4,"time":"2026-01-0');
    log.append([entry(4)]);
    expect(log.verify()).toMatchObject({ ok: true, lines: 4 });
    expect(log.written([2, 4, 9])).toEqual(new Set([2, 4]));
  });

  it('keeps secrets out of command lines and messages', () => {
    expect(redactArgv(['company', 'list', '--db', 'postgresql://app:s3cret@db.internal:5432/companyctl'])).toBe(
      'company list --db postgresql://app:***@db.internal:5432/companyctl',
    );
    expect(redactArgv(['login', '--token', 'abc.def', '--api-key=xyz', '--password-stdin', '--name', 'Acme Ltd'])).toBe(
      "login --token *** --api-key=*** --password-stdin --name 'Acme Ltd'",
    );
    const jwt = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl';
    expect(redactText(`bad token ${jwt} for postgres://u:pw@h/db?sslpassword=x&x=1`)).toBe('bad token *** for postgres://u:***@h/db?sslpassword=***&x=1');
  });

  it('redacts a URL password whole, whatever it holds (@ : / %)', () => {
    const cases: [string, string][] = [
      ['Abc@Def@Ghi', 'postgresql://postgres:***@127.0.0.1:5432/x'],
      ['a:b:c', 'postgresql://postgres:***@127.0.0.1:5432/x'],
      ['50%off', 'postgresql://postgres:***@127.0.0.1:5432/x'],
      ['p%40ss%2Fw', 'postgresql://postgres:***@127.0.0.1:5432/x'],
      ['sl/ash@at', 'postgresql://postgres:***@127.0.0.1:5432/x'],
      ['x/y:z@w%', 'postgresql://postgres:***@127.0.0.1:5432/x'],
    ];
    for (const [password, safe] of cases) {
      const url = `postgresql://postgres:${password}@127.0.0.1:5432/x`;
      const text = redactText(`cannot reach ${url} (timeout)`);
      expect(text).toBe(`cannot reach ${safe} (timeout)`);
      for (const piece of password.split(/[@:/%]/).filter((p) => p.length > 1)) expect(text).not.toContain(piece);
      expect(redactArgv(['company', 'list', '--db', url])).toBe(`company list --db ${safe}`);
    }
    // A query string holding @ is not mistaken for user info.
    expect(redactText('postgresql://u:pw@h/db?application_name=a@b')).toBe('postgresql://u:***@h/db?application_name=a@b');
    expect(redactText('see https://example.com/a@b and postgresql://h/db')).toBe('see https://example.com/a@b and postgresql://h/db');
  });
});
