// The audit trail in the store: one chain for every host, each host's file checked line by line
// against it, so a file writer without the store cannot rewrite, cut, empty, delete, extend or
// roll back the log unnoticed. SQLite always, PostgreSQL when COMPANYCTL_TEST_PG_URL is set.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog, formatLine, GENESIS, type AuditEntry } from '../../src/infra/audit-log.js';
import { resolveStoreLocation, type StoreLocation } from '../../src/infra/db/location.js';
import { migrateStore, openStore, type Store } from '../../src/infra/db/store.js';
import { appendToTrail, auditStats, queryAudit, verifyTrail } from '../../src/services/audit.js';
import { freshPgDatabase, PG_SKIP_REASON, PG_URL, tempHome } from '../helpers.js';

const dialects = [
  { name: 'sqlite', enabled: true },
  { name: 'postgresql', enabled: !!PG_URL },
] as const;

let nextEvent = 1;
const entry = (over: Partial<AuditEntry> = {}): AuditEntry => {
  const i = nextEvent++;
  return {
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    actor: i % 2 ? 'alice' : 'bob',
    role: 'editor',
    action: 'company.updated',
    target: `company:${i}`,
    eventId: i,
    command: `companyctl company update ${i} --employees ${i}`,
    diff: { employees: { from: null, to: i } },
    ...over,
  };
};

for (const dialect of dialects) {
  describe.skipIf(!dialect.enabled)(`audit trail on ${dialect.name}${dialect.enabled ? '' : ` (skipped: ${PG_SKIP_REASON})`}`, () => {
    let home: ReturnType<typeof tempHome>;
    let pgDb: Awaited<ReturnType<typeof freshPgDatabase>> | undefined;
    let loc: StoreLocation;
    let store: Store;
    let log: AuditLog;
    const now = '2026-01-02T00:00:00.000Z';

    beforeAll(async () => {
      home = tempHome();
      pgDb = dialect.name === 'postgresql' ? await freshPgDatabase() : undefined;
    });
    afterAll(async () => {
      await store?.close();
      await pgDb?.cleanup();
      home?.cleanup();
    });
    // A fresh store per test: the trail is append-only, nothing can empty it.
    beforeEach(async () => {
      await store?.close();
      const db = pgDb ? await freshPgDatabase() : undefined;
      const id = Math.random().toString(36).slice(2);
      loc = resolveStoreLocation(db?.url, join(home.home, `store-${id}.db`));
      await migrateStore(loc);
      store = await openStore(loc);
      log = new AuditLog(join(home.home, `state-${id}`));
      if (db) {
        const close = store.close;
        store.close = async () => (await close(), await db.cleanup());
      }
    });

    const write = async (n: number, to = log) => {
      for (let i = 0; i < n; i++) await appendToTrail(store, to, [entry()], { now });
    };
    const lines = () => readFileSync(log.current, 'utf8').split('\n').filter(Boolean);
    const rewrite = (ls: string[]) => writeFileSync(log.current, ls.length ? `${ls.join('\n')}\n` : '');
    const verify = () => verifyTrail(store, log);

    it('keeps each entry in the store and the file, one chain; query and stats read the store', async () => {
      await write(5);
      expect(lines()).toHaveLength(5);
      expect(lines().map((l) => JSON.parse(l).seq)).toEqual([1, 2, 3, 4, 5]);
      expect(JSON.parse(lines()[0]!).prev).toBe(GENESIS);
      expect(await verify()).toMatchObject({ ok: true, entries: 5, head: { seq: 5 }, log: { lines: 5, anchored: true } });
      expect((await queryAudit(store, { actor: 'alice' })).map((l) => l.seq)).toEqual([1, 3, 5]);
      expect((await queryAudit(store, { action: 'company.*', limit: 2 })).map((l) => l.seq)).toEqual([4, 5]);
      expect(await auditStats(store)).toMatchObject({ lines: 5, byActor: { alice: 3, bob: 2 } });
    });

    it('writes a redelivered event once', async () => {
      const e = entry();
      await appendToTrail(store, log, [e], { now });
      expect(await appendToTrail(store, log, [e, entry()], { now, redelivered: [e.eventId!] })).toBe(1);
      expect(lines()).toHaveLength(2);
      expect((await verify()).ok).toBe(true);
    });

    it('catches a line rewritten and the rest re-chained (the keyless chain alone passes)', async () => {
      await write(5);
      const ls = lines();
      let prev = JSON.parse(ls[1]!).hash as string;
      for (let i = 2; i < 5; i++) {
        const { seq: _s, prev: _p, hash: _h, ...rec } = JSON.parse(ls[i]!);
        if (i === 2) rec.diff = { employees: { from: null, to: 9999 } };
        const l = formatLine(i + 1, prev, rec);
        ls[i] = l.text;
        prev = l.hash;
      }
      rewrite(ls);
      expect(log.verify().ok).toBe(true);
      expect(await verify()).toMatchObject({ ok: false, where: 'file', file: log.current, line: 3, seq: 3 });
    });

    it('catches a forged line appended with its hash recomputed', async () => {
      await write(4);
      const last = JSON.parse(lines().at(-1)!);
      const forged = formatLine(5, last.hash, { ...entry(), action: 'company.deleted', target: 'company:1' });
      appendFileSync(log.current, `${forged.text}\n`);
      expect(log.verify().ok).toBe(true);
      expect(await verify()).toMatchObject({ ok: false, line: 5, seq: 5, reason: expect.stringContaining('no such entry') });
    });

    it('catches a cut tail, a log kept to line 1, an emptied log, a deleted log and an older copy', async () => {
      await write(2);
      copyFileSync(log.current, join(home.home, 'older'));
      await write(3);
      const ls = lines();
      const cases: [string, () => void, number][] = [
        ['drop the last 2 lines', () => rewrite(ls.slice(0, 3)), 4],
        ['keep only line 1', () => rewrite(ls.slice(0, 1)), 2],
        ['empty the file', () => rewrite([]), 1],
        ['delete the file', () => rmSync(log.current), 1],
        ['replace it by an older copy', () => copyFileSync(join(home.home, 'older'), log.current), 3],
      ];
      for (const [what, tamper, line] of cases) {
        tamper();
        expect(log.verify().ok, what).toBe(true);
        expect(await verify(), what).toMatchObject({ ok: false, where: 'file', file: log.current, line, reason: expect.stringContaining('cut short') });
        rewrite(ls);
        expect((await verify()).ok, what).toBe(true);
      }
    });

    it('refuses to change or delete a stored entry, and checks the store chain against its head', async () => {
      await write(3);
      const exec = (sql: string) => store.transaction((tx) => tx.em.getConnection().execute(sql, [], 'run', tx.em.getTransactionContext()));
      await expect(exec(`update audit_entry set actor = 'mallory' where seq = 2`)).rejects.toThrow(/append-only/);
      await expect(exec(`delete from audit_entry where seq = 3`)).rejects.toThrow(/append-only/);
      await exec(`update store_meta set value = '9:${'a'.repeat(64)}' where key = 'audit_head'`);
      expect(await verify()).toMatchObject({ ok: false, where: 'store', seq: 9, reason: expect.stringContaining('head') });
    });

    it('anchors the lines a log held before the store kept the trail, by count and last hash', async () => {
      for (let i = 0; i < 3; i++) log.append([entry()]);
      expect(await verify()).toMatchObject({ ok: true, log: { anchored: false, lines: 3 } });
      await write(2);
      const ls = lines();
      expect(ls).toHaveLength(5);
      expect(await verify()).toMatchObject({ ok: true, entries: 2, log: { anchored: true, legacyLines: 3, lines: 5 } });
      rewrite([...ls.slice(0, 1), ...ls.slice(2)]);
      expect(await verify()).toMatchObject({ ok: false, line: 2 });
      rewrite(ls.slice(1));
      expect(await verify()).toMatchObject({ ok: false });
      rewrite(ls);
      expect((await verify()).ok).toBe(true);
    });

    it('keeps one trail for two hosts: each file holds its own entries, the store all of them', async () => {
      const other = new AuditLog(join(home.home, `other-${Math.random()}`));
      await Promise.all([write(4), write(4, other)]);
      expect(await queryAudit(store, {})).toHaveLength(8);
      expect(lines()).toHaveLength(4);
      expect((await verifyTrail(store, log)).ok).toBe(true);
      expect(await verifyTrail(store, other)).toMatchObject({ ok: true, entries: 8, log: { lines: 4 } });
      const seqs = [...(await queryAudit(store, {}))].map((l) => l.seq);
      expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    });
  });
}
