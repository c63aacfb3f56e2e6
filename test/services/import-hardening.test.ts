// Import hardening (issue 16): the rejects file, resumed stdin, record limits, nesting depth,
// non-regular inputs, job identity. SQLite; the service runs in-thread from source.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { CompanyctlError } from '../../src/errors.js';
import { resolveStoreLocation } from '../../src/infra/db/location.js';
import { migrateStore, openStore, type Store } from '../../src/infra/db/store.js';
import { runImport, type ImportDeps, type ImportOptions } from '../../src/services/import/index.js';
import { tempHome } from '../helpers.js';

let home: ReturnType<typeof tempHome>;
let store: Store;

beforeAll(async () => {
  home = tempHome();
  const loc = resolveStoreLocation(undefined, join(home.home, 'store.db'));
  await migrateStore(loc);
  store = await openStore(loc);
});
afterAll(async () => {
  await store?.close();
  home?.cleanup();
});
beforeEach(async () => {
  await store.transaction(async (tx) => {
    for (const t of ['company_external_id', 'outbox_event', 'company', 'import_job']) {
      await tx.em.getConnection().execute(`delete from ${t}`, [], 'run', tx.em.getTransactionContext());
    }
  });
});

const deps = (stdin: string | Buffer = ''): ImportDeps => {
  const s = new PassThrough();
  s.end(stdin);
  return { store: async () => store, now: () => new Date(), actor: 'tester', stdin: s, stateDir: join(home.home, 'state'), worker: false };
};
const opts = (source: string, over: Partial<ImportOptions> = {}): ImportOptions => ({ source, mapping: [], key: { kind: 'domain' }, chunkSize: 3, ...over });
const codeOf = async (p: Promise<unknown>): Promise<string> => {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e, 'expected an error').toBeInstanceOf(CompanyctlError);
  return (e as CompanyctlError).code;
};
const BAD = 'name,domain,country\nGood,good.com,DE\nBad,bad.com,XX\n';
let n = 0;
const file = (text: string | Buffer, name = `in-${++n}.csv`) => {
  const p = join(home.home, name);
  writeFileSync(p, text);
  return p;
};

describe('the rejects file', () => {
  it('refuses an existing file unless --force, and leaves it alone', async () => {
    const rejects = file('keep me', `r-${++n}.csv`);
    expect(await codeOf(runImport(deps(), opts(file(BAD), { rejectsFile: rejects })))).toBe('COMPANYCTL_FILE_EXISTS');
    expect(readFileSync(rejects, 'utf8')).toBe('keep me');
    const s = await runImport(deps(), opts(file(BAD), { rejectsFile: rejects, force: true }));
    expect(s).toMatchObject({ state: 'completed_with_rejects', rejected: 1 });
    expect(readFileSync(rejects, 'utf8')).toContain('3,country');
  });

  it('never writes through a symlink planted at --rejects or at the default path', async () => {
    const victim = file('precious', `victim-${++n}.txt`);
    const planted = join(home.home, `planted-${n}.csv`);
    symlinkSync(victim, planted);
    expect(await codeOf(runImport(deps(), opts(file(BAD), { rejectsFile: planted })))).toBe('COMPANYCTL_FILE_EXISTS');
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    // The default path of the next job id, planted in advance.
    const next = Number((await store.read.all<{ n: number }>('select coalesce(max(id), 0) + 1 as n from import_job'))[0]!.n);
    const dir = join(home.home, 'state', 'imports');
    mkdirSync(dir, { recursive: true });
    const seq = Number((await store.read.all<{ seq: number }>(`select seq from sqlite_sequence where name = 'import_job'`))[0]?.seq ?? 0);
    for (const id of new Set([next, seq + 1])) {
      try {
        symlinkSync(victim, join(dir, `job-${id}-rejects.csv`));
      } catch {
        // already planted
      }
    }
    const s = await runImport(deps(), opts(file(BAD)));
    expect(s.rejected).toBe(1);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(readFileSync(s.rejectsFile!, 'utf8')).toContain('3,country');
  });

  it('does not chmod a folder it did not create', async () => {
    const shared = join(home.home, `shared-${++n}`);
    mkdirSync(shared);
    chmodSync(shared, 0o755);
    await runImport(deps(), opts(file(BAD), { rejectsFile: join(shared, 'r.csv') }));
    expect(statSync(shared).mode & 0o777).toBe(0o755);
    expect(statSync(join(shared, 'r.csv')).mode & 0o777).toBe(0o600);
  });

  it('refuses the input file itself, even with --force (the input stays whole)', async () => {
    const input = file(BAD);
    for (const force of [false, true]) {
      expect(await codeOf(runImport(deps(), opts(input, { rejectsFile: input, force })))).toMatch(/COMPANYCTL_USAGE|COMPANYCTL_FILE_EXISTS/);
      expect(readFileSync(input, 'utf8')).toBe(BAD);
    }
    expect(await codeOf(runImport(deps(), opts(input, { rejectsFile: input, force: true, dryRun: true })))).toBe('COMPANYCTL_USAGE');
    expect(readFileSync(input, 'utf8')).toBe(BAD);
    expect(existsSync(input)).toBe(true);
  });
});
