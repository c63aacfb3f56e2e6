// Shared test helpers: temp homes, a throw-away PostgreSQL database, running the built binary.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';

export const ROOT = resolve(import.meta.dirname, '..');
export const BIN = join(ROOT, 'bin', 'companyctl.js');

export function tempHome(): { home: string; cleanup: () => void } {
  const home = mkdtempSync(join(tmpdir(), 'companyctl-test-'));
  return { home, cleanup: () => rmSync(home, { recursive: true, force: true }) };
}

/** The PostgreSQL server for tests, or undefined (tests then skip, saying why). */
export const PG_URL = process.env.COMPANYCTL_TEST_PG_URL;
export const PG_SKIP_REASON = 'COMPANYCTL_TEST_PG_URL is not set: no PostgreSQL server for these tests (.ci/run provides one)';

/** A fresh, empty database on the test server; dropped by the returned cleanup. */
export async function freshPgDatabase(): Promise<{ url: string; cleanup: () => Promise<void> }> {
  if (!PG_URL) throw new Error(PG_SKIP_REASON);
  const name = `companyctl_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    cleanup: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export interface BinResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the built binary as a subprocess with a clean environment plus `env`. */
export function runBin(args: string[], opts: { env?: Record<string, string | undefined>; input?: string } = {}): BinResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: cleanEnv(opts.env),
    input: opts.input ?? '',
    encoding: 'utf8',
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function runBinAsync(args: string[], opts: { env?: Record<string, string | undefined>; input?: string } = {}): Promise<BinResult> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(opts.env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', NO_COLOR: '1' };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** The first admin's password in tests (never a real one). */
export const ADMIN_PASSWORD = 'correct-horse-battery-9';

/** init + login (token in a 0600 file: no keychain needed) for the built binary. */
export function bootstrapBin(env: Record<string, string | undefined>): void {
  const init = runBin(['init', '--password-stdin'], { env, input: ADMIN_PASSWORD });
  if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
  const login = runBin(['login', '-u', 'admin', '--password-stdin', '--insecure-storage', '--quiet'], { env, input: ADMIN_PASSWORD });
  if (login.code !== 0) throw new Error(`login failed: ${login.stderr}`);
}

export interface InProcessRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run one command in this process through runCli, with in-memory streams: a terminal when
 * `tty`, a pipe otherwise; `prompter` answers prompts (on a TTY) without a real terminal.
 */
export async function runInProcess(
  args: string[],
  env: Record<string, string | undefined>,
  opts: { tty?: boolean; stdin?: string; prompter?: import('../src/io/prompter.js').Prompter } = {},
): Promise<InProcessRun> {
  const { runCli } = await import('../src/cli.js');
  const { PassThrough, Writable } = await import('node:stream');
  let stdout = '';
  let stderr = '';
  const stdin = new PassThrough();
  stdin.end(opts.stdin ?? '');
  const tty = !!opts.tty;
  const io = {
    stdin,
    stdout: new Writable({ write: (c, _e, cb) => ((stdout += c), cb()) }),
    stderr: new Writable({ write: (c, _e, cb) => ((stderr += c), cb()) }),
    stdinIsTTY: tty,
    stdoutIsTTY: tty,
    stderrIsTTY: tty,
  };
  // As runBin: no colour unless a test asks for it, so assertions read plain text.
  const code = await runCli(['node', 'companyctl', ...args], io, { NO_COLOR: '1', ...env }, opts.prompter);
  return { code, stdout, stderr };
}

export const hasScript = spawnSync('script', ['--version']).status === 0;
