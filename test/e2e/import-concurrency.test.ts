// The built binary under real signals and a real second import (issue 16, items 4 and 6):
// SIGTERM/SIGINT stop an import that waits on its input at once, and a second import into the
// same SQLite store waits its turn instead of failing with COMPANYCTL_STORE_BUSY.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BIN, bootstrapBin, runBin, tempHome } from '../helpers.js';

let home: ReturnType<typeof tempHome>;
let env: Record<string, string>;
const dbFile = () => join(home.home, 'data', 'companyctl.db');

beforeAll(() => {
  home = tempHome();
  env = { COMPANYCTL_HOME: home.home };
  bootstrapBin(env);
});
afterAll(() => home.cleanup());

interface Running {
  child: ChildProcessWithoutNullStreams;
  out: { stdout: string; stderr: string };
  exited: Promise<number | null>;
}

function start(args: string[]): Running {
  const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ...env } });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (out.stdout += d));
  child.stderr.on('data', (d) => (out.stderr += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code, signal) => r(code ?? (signal ? -1 : null))));
  return { child, out, exited };
}

/** Poll a condition (no fixed sleeps: the machine may be slow); fail after `ms`. */
async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const query = <T>(sql: string): T[] => {
  const db = new Database(dbFile(), { readonly: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
};
const runningJobs = () => query<{ id: number }>(`select id from import_job where state = 'running'`);
/** Whether another process holds the store's write lock right now. */
function writeLocked(): boolean {
  const db = new Database(dbFile());
  db.pragma('busy_timeout = 0');
  try {
    db.exec('begin immediate');
    db.exec('rollback');
    return false;
  } catch {
    return true;
  } finally {
    db.close();
  }
}
const rows = (prefix: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${prefix} ${from + i},${prefix}-${from + i}.com\n`).join('');

describe('signals', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} ends an import waiting on a silent pipe at once; the job is cancelled and resumes`, async () => {
      const before = runningJobs().length;
      const a = start(['import', '-', '--format', 'csv', '--json']);
      a.child.stdin.write(`name,domain\n${rows(signal, 0, 3)}`);
      await until('the job row', () => runningJobs().length > before);
      a.child.kill(signal);
      // Without the fix the reader waits for the pipe to end, which it never does here.
      const code = await Promise.race([a.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 30_000))]);
      a.child.stdin.destroy();
      expect(code, a.out.stderr).toBe(130);
      const { error } = JSON.parse(a.out.stderr.trim().split('\n').pop()!);
      expect(error.code).toBe('COMPANYCTL_CANCELLED');
      const jobId = Number(/import job (\d+)/.exec(error.message)![1]);
      expect(query<{ state: string }>(`select state from import_job where id = ${jobId}`)[0]!.state).toBe('cancelled');
      const r = runBin(['import', 'resume', String(jobId), '--input', '-', '--json'], { env, input: `name,domain\n${rows(signal, 0, 3)}` });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ state: 'completed', rows: 3 });
    }, 120_000);
  }
});

describe('two imports into one SQLite store', () => {
  it('the second waits its turn with a note, and both succeed', async () => {
    // A holds the write lock: its first 600-row batch is written inside a chunk transaction
    // that stays open while A waits for the rest of its input.
    const a = start(['import', '-', '--format', 'csv', '--json']);
    a.child.stdin.write(`name,domain\n${rows('A', 0, 700)}`);
    await until('A holding the write lock', writeLocked);
    const fileB = join(home.home, 'b.csv');
    writeFileSync(fileB, `name,domain\n${rows('B', 0, 50)}`);
    const b = start(['import', fileB, '--json']);
    await until('B waiting for A', () => b.out.stderr.includes('waiting for import job') || b.child.exitCode !== null);
    expect(b.out.stderr).toMatch(/waiting for import job \d+ \(pid \d+/);
    // Longer than SQLite's busy wait (5 s), after which B used to fail with COMPANYCTL_STORE_BUSY.
    await new Promise((r) => setTimeout(r, 6000));
    expect(b.child.exitCode, b.out.stderr).toBeNull();
    a.child.stdin.end(rows('A', 700, 800));
    expect(await a.exited, a.out.stderr).toBe(0);
    expect(await b.exited, b.out.stderr).toBe(0);
    expect(JSON.parse(a.out.stdout)).toMatchObject({ rows: 800, inserted: 800 });
    expect(JSON.parse(b.out.stdout)).toMatchObject({ rows: 50, inserted: 50 });
  }, 180_000);
});
