// `companyctl broker consume` as users run it: the built binary against the real RabbitMQ,
// killed with SIGKILL between commit and ack (the redelivery changes nothing), stopped with
// SIGTERM (finishes, acks, exit 0), and on a TTY, without one, and with --json.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { BIN, bootstrapBin, ROOT, runBin, runInProcess, tempHome } from '../helpers.js';
import { AMQP_SKIP_REASON, AMQP_URL, brokerAdmin, uniqueName, until } from '../broker-helpers.js';

describe.skipIf(!!AMQP_SKIP_REASON)(`broker consume, end to end${AMQP_SKIP_REASON ? ` (skipped: ${AMQP_SKIP_REASON})` : ''}`, () => {
  let home: ReturnType<typeof tempHome>;
  let env: Record<string, string>;
  let admin: Awaited<ReturnType<typeof brokerAdmin>>;
  let dlx: string;

  beforeAll(async () => {
    home = tempHome();
    env = { COMPANYCTL_HOME: home.home };
    admin = await brokerAdmin();
    dlx = admin.own('exchange', uniqueName('dlx'));
    mkdirSync(join(home.home, 'config'), { recursive: true });
    writeFileSync(join(home.home, 'config', 'config.json'), JSON.stringify({ broker: { url: AMQP_URL, publish: false, consume: { deadLetterExchange: dlx, prefetch: 100, batchSize: 50 } } }));
    bootstrapBin(env);
  });
  afterAll(async () => {
    await admin?.cleanup();
    home?.cleanup();
  });

  const newQueue = async (what: string) => {
    const q = admin.own('queue', uniqueName(what));
    admin.own('queue', `${q}.dead`);
    await admin.declareLikeConsumer(q, dlx);
    return q;
  };
  const upserts = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({ body: { op: 'upsert', key: 'domain', company: { name: `${prefix} ${i}`, domain: `${prefix}-${i}.example` } }, messageId: `${prefix}-${i}` }));
  const sql = (q: string, ...params: unknown[]) => {
    const db = new Database(join(home.home, 'data', 'companyctl.db'), { readonly: true });
    try {
      return db.prepare(q).get(...params) as Record<string, number>;
    } finally {
      db.close();
    }
  };

  it('killed (SIGKILL) between commit and ack: the messages come back, and their redelivery changes nothing', async () => {
    const q = await newQueue('kill');
    await admin.sendMany(q, upserts('kill', 5));
    const killed = runBin(['broker', 'consume', q, '--idle-exit', '20s', '--quiet'], { env: { ...env, COMPANYCTL_FAILPOINT: 'broker-before-ack' } });
    expect(killed.code).toBe(-1); // SIGKILL: no exit code
    expect(sql(`select count(*) as n from company where domain like 'kill-%'`).n).toBe(5);
    await until(async () => (await admin.count(q)) === 5, 'the unacked messages to return to the queue');

    const again = runBin(['broker', 'consume', q, '--idle-exit', '2s', '--json'], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ queue: q, received: 5, duplicates: 5, created: 0, updated: 0 });
    expect(sql(`select count(*) as n from company where domain like 'kill-%'`).n).toBe(5);
    expect(sql(`select count(*) as n from outbox_event where type = 'company.created' and actor = ?`, `amqp:${q}`).n).toBe(5);
    expect(await admin.count(q)).toBe(0);
  });

  it('SIGTERM: stops taking messages, finishes and acks what it holds, exits 0', async () => {
    const q = await newQueue('term');
    const child = spawn(process.execPath, [BIN, 'broker', 'consume', q, '--json'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await until(() => /consuming/.test(stderr), 'the consumer to start');
    await admin.sendMany(q, upserts('term', 300));
    await until(() => sql(`select count(*) as n from company where domain like 'term-%'`).n > 0, 'a first batch');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.created).toBe(sql(`select count(*) as n from company where domain like 'term-%'`).n);
    // What it took it applied and acked; the rest waits in the queue for the next consumer.
    expect(await admin.count(q)).toBe(300 - report.created);
    expect(stderr).toMatch(/stopping/);
  });

  it('on a TTY, without one, and with --json; bad input and a missing broker section are typed errors', async () => {
    const q = await newQueue('tty');
    await admin.sendMany(q, upserts('tty', 2));
    const tty = await runInProcess(['broker', 'consume', q, '--idle-exit', '1s'], env, { tty: true });
    expect(tty.code, tty.stderr).toBe(0);
    expect(tty.stdout).toMatch(/^created\s+2$/m);
    expect(tty.stderr).toMatch(/consuming/);

    await admin.sendMany(q, upserts('tty', 2));
    const pipe = await runInProcess(['broker', 'consume', q, '--idle-exit', '1s'], env);
    expect(pipe.code, pipe.stderr).toBe(0);
    expect(pipe.stdout).toMatch(/^duplicates\t2$/m);

    const json = await runInProcess(['broker', 'consume', q, '--idle-exit', '1s', '--json', '--quiet'], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ queue: q, received: 0 });
    expect(json.stderr).toBe('');

    const badFlag = await runInProcess(['broker', 'consume', q, '--max-messages', '0', '--json'], env);
    expect(badFlag.code).toBe(2);
    expect(JSON.parse(badFlag.stderr).error).toMatchObject({ code: 'COMPANYCTL_USAGE', field: '--max-messages' });
    const badQueue = await runInProcess(['broker', 'consume', 'amq.direct', '--json'], env);
    expect(JSON.parse(badQueue.stderr).error).toMatchObject({ code: 'COMPANYCTL_USAGE', field: 'queue' });

    const bare = { ...env, COMPANYCTL_CONFIG: join(home.home, 'no-such-config.json') };
    const none = await runInProcess(['broker', 'consume', q, '--json'], bare);
    expect(none.code).toBe(1);
    expect(JSON.parse(none.stderr).error.code).toBe('COMPANYCTL_BROKER_NOT_CONFIGURED');
    const noTty = await runInProcess(['broker', 'set-password', '--json'], env);
    expect(JSON.parse(noTty.stderr).error).toMatchObject({ field: '--stdin' });
  });
});

// The broker password in the real OS keychain: a throw-away gnome-keyring under dbus-run-session.
const WITH_KEYRING = resolve(ROOT, '..', 'shared', 'scripts', 'with-keyring.sh');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const keyringMissing = [!existsSync(WITH_KEYRING) && WITH_KEYRING, ...['dbus-run-session', 'gnome-keyring-daemon', 'secret-tool'].filter((c) => !has(c))].filter(Boolean);
const keyringSkip = AMQP_SKIP_REASON ?? (keyringMissing.length > 0 ? `no Secret Service can be started here; missing ${keyringMissing.join(', ')}` : undefined);

describe.skipIf(!!keyringSkip)(`broker set-password${keyringSkip ? ` (skipped: ${keyringSkip})` : ''}`, () => {
  it('stores the password from stdin, consume logs in with it, --delete removes it', async () => {
    const home = tempHome();
    const admin = await brokerAdmin();
    try {
      const dlx = admin.own('exchange', uniqueName('dlx'));
      const q = admin.own('queue', uniqueName('pw'));
      admin.own('queue', `${q}.dead`);
      const url = new URL(AMQP_URL);
      url.username = 'guest';
      const config = join(home.home, 'config.json');
      writeFileSync(config, JSON.stringify({ broker: { url: url.href, publish: false, consume: { deadLetterExchange: dlx } } }));
      const env = { COMPANYCTL_HOME: home.home, COMPANYCTL_CONFIG: config };
      bootstrapBin(env);
      const c = `${process.execPath} ${BIN}`;
      const script = [
        'echo "== before"',
        `${c} broker consume ${q} --idle-exit 1s --json 2>&1; echo "exit $?"`,
        `printf %s guest | ${c} broker set-password --stdin --json`,
        'echo "== stored"',
        'secret-tool search --all service companyctl 2>&1',
        'echo "== consume"',
        `${c} broker consume ${q} --idle-exit 1s --json --quiet; echo "exit $?"`,
        `${c} broker set-password --delete --quiet`,
        'echo "== after delete"',
        `${c} broker consume ${q} --idle-exit 1s --json 2>&1; echo "exit $?"`,
      ].join('\n');
      const r = spawnSync('dbus-run-session', ['--', 'sh', WITH_KEYRING, 'sh', '-c', script], {
        env: { PATH: process.env.PATH, HOME: home.home, ...env },
        encoding: 'utf8',
      });
      const out = r.stdout + r.stderr;
      const section = (name: string) => out.split(`== ${name}\n`)[1]?.split('\n== ')[0] ?? '';
      expect(section('before'), out).toContain('COMPANYCTL_BROKER_NO_PASSWORD');
      expect(section('stored'), out).toContain(`broker-password@${url.href.replace(/\/$/, '')}`);
      expect(section('consume'), out).toContain('exit 0');
      expect(JSON.parse(section('consume').split('\n')[0]!)).toMatchObject({ queue: q, received: 0 });
      expect(section('after delete')).toContain('COMPANYCTL_BROKER_NO_PASSWORD');
    } finally {
      await admin.cleanup();
      home.cleanup();
    }
  }, 180_000);
});
