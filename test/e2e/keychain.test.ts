// The real OS keychain: a throw-away gnome-keyring (Secret Service) under dbus-run-session,
// started by ../shared/scripts/with-keyring.sh; and a D-Bus that never answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { ADMIN_PASSWORD, BIN, ROOT, runBin, runBinAsync, tempHome } from '../helpers.js';

const WITH_KEYRING = resolve(ROOT, '..', 'shared', 'scripts', 'with-keyring.sh');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = [
  !existsSync(WITH_KEYRING) && WITH_KEYRING,
  ...['dbus-run-session', 'gnome-keyring-daemon', 'secret-tool'].filter((c) => !has(c)),
].filter(Boolean);
const SKIP = missing.length > 0 ? ` (skipped: no Secret Service can be started here; missing ${missing.join(', ')}; .ci/run installs dbus, gnome-keyring and libsecret-tools)` : '';

describe.skipIf(missing.length > 0)(`login with the OS keychain${SKIP}`, () => {
  let home: ReturnType<typeof tempHome>;
  beforeAll(() => {
    home = tempHome();
    expect(runBin(['init', '--password-stdin'], { env: { COMPANYCTL_HOME: home.home }, input: ADMIN_PASSWORD }).code).toBe(0);
  });
  afterAll(() => home.cleanup());

  it('keeps the token in the Secret Service and removes it on logout', () => {
    // One D-Bus session for the whole story: the keyring lives as long as it does.
    const c = `${process.execPath} ${BIN}`;
    const script = [
      `printf %s "$PW" | ${c} login -u admin --password-stdin --quiet`,
      'echo "== stored"',
      'secret-tool search --all service companyctl 2>&1',
      'echo "== token"',
      `${c} auth token`,
      'echo "== whoami"',
      `${c} whoami`,
      'echo "== status"',
      `${c} auth status --json`,
      `${c} logout --quiet`,
      'echo "== after logout"',
      'secret-tool search --all service companyctl 2>&1',
      `${c} whoami 2>/dev/null; echo "whoami exit $?"`,
    ].join('\n');
    const r = spawnSync('dbus-run-session', ['--', 'sh', WITH_KEYRING, 'sh', '-c', script], {
      env: { PATH: process.env.PATH, HOME: home.home, COMPANYCTL_HOME: home.home, PW: ADMIN_PASSWORD },
      encoding: 'utf8',
      timeout: 60_000,
    });
    const out = r.stdout;
    const section = (name: string) => out.split(`== ${name}\n`)[1]?.split('\n== ')[0] ?? '';
    const token = section('token').trim();
    expect(token.split('.'), out + r.stderr).toHaveLength(3);
    expect(section('stored')).toContain('attribute.service = companyctl');
    expect(section('stored')).toContain(`secret = ${token}`);
    expect(section('whoami').trim()).toBe('admin\tadmin');
    expect(JSON.parse(section('status'))).toMatchObject({ storedIn: 'keychain', username: 'admin' });
    expect(section('after logout')).not.toContain('companyctl');
    expect(out).toContain('whoami exit 4');
    // Nothing fell back to a file.
    expect(existsSync(join(home.home, 'config', 'credentials'))).toBe(false);
  });
});

describe('a keychain that never answers', () => {
  let server: Server;
  let home: ReturnType<typeof tempHome>;
  const socket = join(process.env.TMPDIR ?? '/tmp', `companyctl-hung-dbus-${process.pid}.sock`);
  beforeAll(async () => {
    home = tempHome();
    expect(runBin(['init', '--password-stdin'], { env: { COMPANYCTL_HOME: home.home }, input: ADMIN_PASSWORD }).code).toBe(0);
    rmSync(socket, { force: true });
    // Accepts connections and never says a word: a hung D-Bus.
    server = createServer(() => undefined);
    await new Promise<void>((done) => server.listen(socket, done));
  });
  afterAll(() => {
    server.close();
    rmSync(socket, { force: true });
    home.cleanup();
  });

  it('times out after about 3 s with its own error instead of hanging', async () => {
    const env = { COMPANYCTL_HOME: home.home, DBUS_SESSION_BUS_ADDRESS: `unix:path=${socket}` };
    const t0 = Date.now();
    const r = await runBinAsync(['company', 'list', '--json'], { env });
    const ms = Date.now() - t0;
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stderr).error.code).toBe('COMPANYCTL_KEYCHAIN_TIMEOUT');
    expect(ms).toBeLessThan(10_000);
    const login = await runBinAsync(['login', '-u', 'admin', '--password-stdin', '--json'], { env, input: ADMIN_PASSWORD });
    expect(login.code).toBe(4);
    expect(JSON.parse(login.stderr).error.code).toBe('COMPANYCTL_KEYCHAIN_TIMEOUT');
  });

  it('COMPANYCTL_TOKEN never touches the keychain', async () => {
    // Log in with a file, make a token, then use only the token while D-Bus hangs.
    const base = { COMPANYCTL_HOME: home.home };
    expect(runBin(['login', '-u', 'admin', '--password-stdin', '--insecure-storage', '--quiet'], { env: base, input: ADMIN_PASSWORD }).code).toBe(0);
    const token = runBin(['token', 'create', '--name', 'cron'], { env: base }).stdout.trim();
    runBin(['logout'], { env: base });
    const r = await runBinAsync(['company', 'list', '--json'], { env: { ...base, COMPANYCTL_TOKEN: token, DBUS_SESSION_BUS_ADDRESS: `unix:path=${socket}` } });
    expect(r.code, r.stderr).toBe(0);
  });
});
