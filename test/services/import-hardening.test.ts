// Import hardening (issue 16): the rejects file, resumed stdin, record limits, nesting depth,
// non-regular inputs, job identity. SQLite; the service runs in-thread from source.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { CompanyctlError } from '../../src/errors.js';
import { resolveStoreLocation } from '../../src/infra/db/location.js';
import { migrateStore, openStore, type Store } from '../../src/infra/db/store.js';
import { getImportJob, resumeImport, runImport, type ImportDeps, type ImportOptions } from '../../src/services/import/index.js';
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

/** stdin fed in pieces of 100 bytes, as a pipe delivers it. */
const deps = (stdin: string | Buffer = ''): ImportDeps => {
  const s = new PassThrough();
  const buf = Buffer.from(stdin);
  for (let i = 0; i < buf.length; i += 100) s.write(buf.subarray(i, i + 100));
  s.end();
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

  it('--force never removes a device, pipe or folder at --rejects', async () => {
    const fifo = join(home.home, `rejects-fifo-${++n}`);
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const target of [fifo, home.home]) {
      expect(await codeOf(runImport(deps(), opts(file(BAD), { rejectsFile: target, force: true })))).toBe('COMPANYCTL_FILE_EXISTS');
    }
    expect(statSync(fifo).isFIFO()).toBe(true);
    expect(statSync(home.home).isDirectory()).toBe(true);
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

const csv = (prefix: string, n: number) => `name,domain\n${Array.from({ length: n }, (_, i) => `${prefix} ${i},${prefix}-${String(i).padStart(3, '0')}.com`).join('\n')}\n`;
const domains = async () => (await store.read.all<{ domain: string }>('select domain from company order by domain')).map((r) => r.domain);
/** Cancels the run once `rows` rows are committed: a kill between chunks, as far as the job can tell. */
function stopAfter(rows: number) {
  const ac = new AbortController();
  return { ac, progress: { start() {}, notice() {}, stop() {}, update: (u: { records: number }) => (u.records >= rows ? ac.abort() : undefined) } };
}

describe('a resumed stdin job proves its input', () => {
  it('refuses different input (same length) and shorter input, then resumes with the right one', async () => {
    const a = csv('a', 40);
    const b = csv('b', 40);
    expect(b.length).toBe(a.length);
    const { ac, progress } = stopAfter(6);
    const e = await runImport(deps(a), opts('-'), progress, ac.signal).catch((x: CompanyctlError) => x);
    expect((e as CompanyctlError).code).toBe('COMPANYCTL_CANCELLED');
    const jobId = ((e as CompanyctlError).data?.summary as { jobId: number }).jobId;
    const before = await domains();
    expect(before.length).toBeGreaterThanOrEqual(6);
    expect(before.length).toBeLessThan(40);
    expect((await getImportJob({ store: async () => store }, jobId)).inputPrefix).toMatchObject({ bytes: expect.any(Number) });

    for (const wrong of [b, a.slice(0, 150)]) {
      expect(await codeOf(resumeImport(deps(wrong), jobId, '-'))).toBe('COMPANYCTL_IMPORT_INPUT_CHANGED');
      expect(await domains()).toEqual(before);
      expect((await getImportJob({ store: async () => store }, jobId)).state).toBe('failed');
    }
    const s = await resumeImport(deps(a), jobId, '-');
    expect(s).toMatchObject({ state: 'completed', rows: 40 });
    expect((await domains()).every((d) => d.startsWith('a-'))).toBe(true);
    expect(await domains()).toHaveLength(40);
  });

  it('a job left running by a dead run is marked failed (resumable) by the next import', async () => {
    const { ac, progress } = stopAfter(3);
    const e = (await runImport(deps(csv('c', 9)), opts('-'), progress, ac.signal).catch((x: CompanyctlError) => x)) as CompanyctlError;
    const jobId = (e.data?.summary as { jobId: number }).jobId;
    // What a kill -9 leaves: the job running, its owner a process that is gone.
    await store.transaction((tx) =>
      tx.em.getConnection().execute(`update import_job set state = 'running', lock_owner = ? where id = ?`, [`${hostname()}:999999999:dead`, jobId], 'run', tx.em.getTransactionContext()),
    );
    await runImport(deps(csv('d', 2)), opts('-'));
    const job = await getImportJob({ store: async () => store }, jobId);
    expect(job.state).toBe('failed');
    expect(job.error).toMatch(/interrupted/);
    expect(job.lockOwner).toBeNull();
  });
});

describe('a non-regular input (a pipe, /dev/fd/N) is read once, hashed as it streams', () => {
  it('imports from a named pipe', async () => {
    const fifo = join(home.home, `pipe-${++n}.csv`);
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const src = file(csv('p', 12));
    const writer = spawn('sh', ['-c', `cat "${src}" > "${fifo}"`]);
    const exited = new Promise((r) => writer.on('exit', r));
    const s = await runImport(deps(), opts(fifo));
    await exited;
    expect(s).toMatchObject({ state: 'completed', rows: 12, inserted: 12 });
    const job = await getImportJob({ store: async () => store }, s.jobId!);
    expect(job.options).toMatchObject({ streamed: true });
  });

  it('import <(cat file) works with the built binary (bash process substitution)', () => {
    const bin = join(import.meta.dirname, '..', '..', 'bin', 'companyctl.js');
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, COMPANYCTL_HOME: join(home.home, `bin-${++n}`) };
    const pw = 'correct-horse-battery-9';
    expect(spawnSync(process.execPath, [bin, 'init', '--password-stdin'], { env, input: pw }).status).toBe(0);
    expect(spawnSync(process.execPath, [bin, 'login', '-u', 'admin', '--password-stdin', '--insecure-storage', '--quiet'], { env, input: pw }).status).toBe(0);
    const src = file(csv('q', 5));
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${bin}" import <(cat "${src}") --json`], { env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ rows: 5, inserted: 5 });
  });
});

describe('job identity', () => {
  it('a byte-identical copy under another name is a new job; the same path resumes', async () => {
    const original = file(csv('i', 12), `ident-${++n}.csv`);
    const { ac, progress } = stopAfter(3);
    const e = (await runImport(deps(), opts(original), progress, ac.signal).catch((x: CompanyctlError) => x)) as CompanyctlError;
    const jobId = (e.data?.summary as { jobId: number }).jobId;
    const copy = join(home.home, `ident-${n}-copy.txt`);
    copyFileSync(original, copy);
    const other = await runImport(deps(), opts(copy, { format: 'csv' }));
    expect(other.jobId).not.toBe(jobId);
    expect(other.resumedFrom).toBe(0);
    const same = await runImport(deps(), opts(original));
    expect(same.jobId).toBe(jobId);
    expect(same.resumedFrom).toBeGreaterThan(0);
  });
});

describe('records too large, inputs without end, gzip bombs, deep nesting', () => {
  const failure = async (p: Promise<unknown>) => {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e, 'expected an error').toBeInstanceOf(CompanyctlError);
    const err = e as CompanyctlError;
    // A failed run wraps the reader's error; the cause names the limit and the flag.
    const cause = (err.cause as CompanyctlError | undefined) ?? err;
    return { err, cause };
  };

  it('one NDJSON line over the limit stops the import naming the line, the limit and the flag', async () => {
    const long = `{"name":"${'x'.repeat(3 << 20)}","domain":"long.com"}`;
    const input = file(`{"name":"A","domain":"a-ok.com"}\n${long}\n`, `long-${++n}.ndjson`);
    for (const dryRun of [true, false]) {
      const { err, cause } = await failure(runImport(deps(), opts(input, { dryRun })));
      expect(cause.code).toBe('COMPANYCTL_INVALID_INPUT');
      expect(cause.field).toBe('--max-record-size');
      expect(cause.message).toMatch(/^line 2: .*longer than 1 MiB/);
      expect(`${cause.hint}`).toContain('--max-record-size');
      if (!dryRun) expect(err.code).toBe('COMPANYCTL_IMPORT_FAILED');
    }
    // Raised, the record is read (and rejected by validation, as any too-long name is).
    const s = await runImport(deps(), opts(input, { maxRecordChars: 4 << 20 }));
    expect(s).toMatchObject({ rows: 2, inserted: 1, rejected: 1 });
  });

  it('a JSON array element over the limit stops the import the same way', async () => {
    const input = file(`[{"name":"A","domain":"a-json.com"},\n{"name":"${'y'.repeat(3 << 20)}"}]`, `long-${++n}.json`);
    const { cause } = await failure(runImport(deps(), opts(input, { dryRun: true })));
    expect(cause).toMatchObject({ code: 'COMPANYCTL_INVALID_INPUT', field: '--max-record-size' });
    expect(cause.message).toMatch(/^line 2: /);
  });

  it('/dev/zero as CSV ends at the record limit instead of reading for ever', async () => {
    const { cause } = await failure(runImport(deps(), opts('/dev/zero', { format: 'csv', dryRun: true })));
    expect(cause).toMatchObject({ code: 'COMPANYCTL_INVALID_INPUT', field: '--max-record-size' });
    const real = await failure(runImport(deps(), opts('/dev/zero', { format: 'csv' })));
    expect(real.cause).toMatchObject({ field: '--max-record-size' });
  });

  it('a gzip bomb is refused naming the ratio and the flag', async () => {
    const { gzipSync } = await import('node:zlib');
    // White space between array elements: every reader limit but the ratio lets it through.
    const bomb = file(gzipSync(Buffer.concat([Buffer.from('['), Buffer.alloc(70 << 20, ' '), Buffer.from(']')])), `bomb-${++n}.json.gz`);
    const { cause } = await failure(runImport(deps(), opts(bomb, { dryRun: true })));
    expect(cause).toMatchObject({ code: 'COMPANYCTL_INVALID_INPUT', field: '--max-gzip-ratio' });
    expect(cause.hint).toContain('--max-gzip-ratio');
  });

  it('a record nested 5,000 deep is rejected naming the limit; the rows around it are imported', async () => {
    const deep = `{"name":"Deep","domain":"deep.com","tags":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    for (const [ext, text] of [
      ['ndjson', `{"name":"A","domain":"a-deep.com"}\n${deep}\n{"name":"B","domain":"b-deep.com"}\n`],
      ['json', `[{"name":"A","domain":"a-deep.com"},\n${deep},\n{"name":"B","domain":"b-deep.com"}]`],
    ]) {
      const s = await runImport(deps(), opts(file(text!, `deep-${++n}.${ext}`)));
      expect(s).toMatchObject({ rows: 3, rejected: 1 });
      const reject = JSON.parse(readFileSync(s.rejectsFile!, 'utf8').trim());
      expect(reject).toMatchObject({ line: 2, field: 'record' });
      expect(reject.reason).toMatch(/deeper than 32 levels/);
    }
    expect(await domains()).toEqual(expect.arrayContaining(['a-deep.com', 'b-deep.com']));
  });
});
