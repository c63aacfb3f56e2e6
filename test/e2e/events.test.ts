// At-least-once delivery with idempotent handlers, end to end: the built binary killed
// (SIGKILL) right after its write committed, or after its handlers ran but before their
// outcomes were recorded; the next command or `events drain` finishes the work, and each
// handler's effect happens exactly once. SQLite always, PostgreSQL when configured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { bootstrapBin, freshPgDatabase, PG_SKIP_REASON, PG_URL, runBin, tempHome } from '../helpers.js';

const dialects = [
  { name: 'sqlite', enabled: true },
  { name: 'postgresql', enabled: !!PG_URL },
] as const;

for (const dialect of dialects) {
  describe.skipIf(!dialect.enabled)(`a crash loses no event on ${dialect.name}${dialect.enabled ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
    let home: ReturnType<typeof tempHome>;
    let pgDb: Awaited<ReturnType<typeof freshPgDatabase>> | undefined;
    let env: Record<string, string>;

    beforeAll(async () => {
      home = tempHome();
      pgDb = dialect.name === 'postgresql' ? await freshPgDatabase() : undefined;
      env = { COMPANYCTL_HOME: home.home, ...(pgDb ? { COMPANYCTL_DB: pgDb.url } : {}) };
      mkdirSync(join(home.home, 'config'), { recursive: true });
      // A lease no process start-up on a loaded machine can outlast; the test ends it itself (expireLeases).
      writeFileSync(join(home.home, 'config', 'config.json'), JSON.stringify({ events: { leaseSeconds: 600 } }));
      bootstrapBin(env);
    });
    afterAll(async () => {
      await pgDb?.cleanup();
      home?.cleanup();
    });

    const json = (args: string[]) => {
      const r = runBin([...args, '--json'], { env });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout);
    };
    const auditLines = () =>
      readFileSync(join(home.home, 'state', 'audit.log'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { eventId: number; action: string });
    const linesFor = (eventId: number) => auditLines().filter((l) => l.eventId === eventId);
    /** The lease runs out now: what the clock would do after leaseSeconds, without waiting for it. */
    const expireLeases = async (eventId: number) => {
      const sql = `update event_delivery set locked_until = '2000-01-01T00:00:00.000Z' where event_id = ${Number(eventId)} and locked_until is not null`;
      if (pgDb) {
        const c = new pg.Client({ connectionString: pgDb.url });
        await c.connect();
        await c.query(sql);
        await c.end();
      } else {
        const db = new Database(join(home.home, 'data', 'companyctl.db'));
        db.pragma('busy_timeout = 5000');
        db.prepare(sql).run();
        db.close();
      }
    };

    it('killed after commit: the event waits, and `events drain` delivers it once to every handler', () => {
      const killed = runBin(['company', 'create', '--name', 'Acme', '--domain', 'acme.de', '--country', 'DE'], { env: { ...env, COMPANYCTL_FAILPOINT: 'after-commit' } });
      expect(killed.code).toBe(-1); // SIGKILL: no exit code
      expect(json(['company', 'get', 'acme.de', '--fresh'])).toMatchObject({ id: 1, name: 'Acme' });
      const pending = json(['events', 'list', '--pending']).items;
      expect(pending).toEqual([expect.objectContaining({ type: 'company.created', handler: null, status: 'pending' })]);
      const created = pending[0].eventId as number;

      const drained = json(['events', 'drain']);
      expect(drained).toMatchObject({ fannedOut: 1, delivered: 4, failed: 0, dead: 0, remainingPending: 0 });
      expect(linesFor(created)).toHaveLength(1);
      expect(json(['events', 'drain'])).toMatchObject({ fannedOut: 0, delivered: 0 });
      expect(linesFor(created)).toHaveLength(1);
      expect(json(['stats']).companies).toMatchObject({ live: 1, byCountry: [{ value: 'DE', count: 1 }] });
    });

    it('killed after commit: the next command that writes delivers it too', () => {
      const killed = runBin(['company', 'create', '--name', 'Globex', '--domain', 'globex.com', '--country', 'US'], { env: { ...env, COMPANYCTL_FAILPOINT: 'after-commit' } });
      expect(killed.code).toBe(-1);
      expect(runBin(['company', 'update', 'acme.de', '--employees', '5'], { env }).code).toBe(0);
      expect(json(['events', 'list', '--pending']).items).toEqual([]);
      expect(auditLines().map((l) => l.action).filter((a) => a.startsWith('company.'))).toEqual(['company.created', 'company.created', 'company.updated']);
    });

    it('killed after the handlers ran but before their acks: redelivered after the lease, still once each', async () => {
      const killed = runBin(['company', 'update', 'globex.com', '--country', 'CA'], { env: { ...env, COMPANYCTL_FAILPOINT: 'before-ack' } });
      expect(killed.code).toBe(-1);
      const eventId = Math.max(...json(['events', 'list']).items.map((i: { eventId: number }) => i.eventId));
      expect(linesFor(eventId)).toHaveLength(1); // written before the crash
      // Claimed under a lease: not due until it runs out.
      expect(json(['events', 'drain'])).toMatchObject({ delivered: 0 });
      await expireLeases(eventId);
      const drained = json(['events', 'drain']);
      expect(drained.delivered).toBe(3); // audit, cache, metrics; "derived" committed its ack with its counts
      expect(linesFor(eventId)).toHaveLength(1);
      expect(json(['stats']).companies.byCountry).toEqual([
        { value: 'CA', count: 1 },
        { value: 'DE', count: 1 },
      ]);
      expect(json(['audit', 'verify'])).toMatchObject({ ok: true, lines: auditLines().length });
      const metrics = json(['stats']).events;
      expect(metrics).toMatchObject({ pending: 0, failed: 0, dead: 0 });
    }, 120_000);
  });
}
