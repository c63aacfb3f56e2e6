// The enrich API key in the real OS keychain: a throw-away gnome-keyring (Secret Service) under
// dbus-run-session (../shared/scripts/with-keyring.sh), and a local API that checks the key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BIN, bootstrapBin, ROOT, runBin, tempHome } from '../helpers.js';
import { byDomain, enrichConfig, startApi, type TestApi } from '../../fixtures/enrich/server.js';

const WITH_KEYRING = resolve(ROOT, '..', 'shared', 'scripts', 'with-keyring.sh');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = [!existsSync(WITH_KEYRING) && WITH_KEYRING, ...['dbus-run-session', 'gnome-keyring-daemon', 'secret-tool'].filter((c) => !has(c))].filter(Boolean);
const SKIP = missing.length > 0 ? ` (skipped: no Secret Service can be started here; missing ${missing.join(', ')})` : '';
const KEY = 'sk_live_keychain_5d2c9e';

describe.skipIf(missing.length > 0)(`enrich API key in the OS keychain${SKIP}`, () => {
  let home: ReturnType<typeof tempHome>;
  let api: TestApi;
  let config: string;

  beforeAll(async () => {
    home = tempHome();
    api = await startApi((req, n) => (req.headers['x-api-key'] === KEY ? byDomain(req, n) : { status: 401, body: { error: 'bad key' } }));
    config = join(home.home, 'config.json');
    writeFileSync(config, JSON.stringify({ enrich: enrichConfig(api.url, { auth: { header: 'X-Api-Key', keychain: true } }) }));
    const env = { COMPANYCTL_HOME: home.home, COMPANYCTL_CONFIG: config };
    bootstrapBin(env);
    expect(runBin(['company', 'create', '--name', 'Acme', '--domain', 'acme.de'], { env }).code).toBe(0);
  });
  afterAll(async () => {
    await api.close();
    home.cleanup();
  });

  it('set-key stores it from stdin, enrich uses it, --delete removes it', async () => {
    const c = `${process.execPath} ${BIN}`;
    const script = [
      `printf %s "$KEY" | ${c} enrich set-key --stdin --quiet`,
      'echo "== stored"',
      'secret-tool search --all service companyctl 2>&1',
      'echo "== enrich"',
      `${c} enrich --json`,
      `${c} enrich set-key --delete --quiet`,
      'echo "== after delete"',
      `${c} enrich --json --restart 2>&1; echo "exit $?"`,
    ].join('\n');
    // Asynchronously: the API answers from this process.
    const out = await new Promise<string>((done) => {
      const child = spawn('dbus-run-session', ['--', 'sh', WITH_KEYRING, 'sh', '-c', script], {
        env: { PATH: process.env.PATH, HOME: home.home, COMPANYCTL_HOME: home.home, COMPANYCTL_CONFIG: config, KEY },
      });
      let s = '';
      child.stdout.on('data', (d) => (s += d));
      child.stderr.on('data', (d) => (s += d));
      child.on('close', () => done(s));
    });
    const section = (name: string) => out.split(`== ${name}\n`)[1]?.split('\n== ')[0] ?? '';
    expect(section('stored'), out).toContain(`secret = ${KEY}`);
    expect(section('stored')).toContain('enrich-api-key@http://127.0.0.1');
    expect(JSON.parse(section('enrich').split('\n')[0]!), out).toMatchObject({ enriched: 1, failed: 0 });
    expect(api.requests.every((q) => q.headers['x-api-key'] === KEY)).toBe(true);
    expect(section('after delete')).toContain('COMPANYCTL_ENRICH_NO_API_KEY');
    expect(section('after delete')).toContain('exit 1');
    // The key never reached argv or output outside the keychain listing.
    expect(out.replace(section('stored'), '')).not.toContain(KEY);
    // Both were audited with the API's origin, never the key.
    const audit = runBin(['audit', '--action', 'enrich.key_*', '--json'], { env: { COMPANYCTL_HOME: home.home, COMPANYCTL_CONFIG: config } });
    expect(JSON.parse(audit.stdout).items.map((l: { action: string; data: { api: string } }) => [l.action, l.data.api])).toEqual([
      ['enrich.key_set', new URL(api.url).origin],
      ['enrich.key_deleted', new URL(api.url).origin],
    ]);
    expect(audit.stdout).not.toContain(KEY);
    // Seven processes under dbus on a shared 2-core machine: a wide margin, not a timing assertion.
  }, 120_000);
});
