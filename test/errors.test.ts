// The one error mapping: real disk-full failures (the /dev/full device, a SQLite file at its
// page limit) become COMPANYCTL_DISK_FULL with a hint, never an internal error.
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Database from 'better-sqlite3';
import { reportError } from '../src/cli.js';
import { CompanyctlError, diskFullError } from '../src/errors.js';
import { resolveStoreLocation } from '../src/infra/db/location.js';
import { toStoreError } from '../src/infra/db/store.js';
import type { IO } from '../src/context.js';
import { tempHome } from './helpers.js';

function enospc(): unknown {
  try {
    writeFileSync('/dev/full', 'x');
  } catch (e) {
    return e;
  }
  throw new Error('/dev/full accepted a write');
}

function report(err: unknown): { code: number; stderr: string } {
  let stderr = '';
  const io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: { write: (s: string) => (stderr += s) } } as unknown as IO;
  const code = reportError(err, io, { json: true, debug: false });
  return { code, stderr };
}

describe('disk full', () => {
  it('ENOSPC from a write is its own error with a hint, exit 1', () => {
    const r = report(enospc());
    expect(r.code).toBe(1);
    const { error } = JSON.parse(r.stderr);
    expect(error.code).toBe('COMPANYCTL_DISK_FULL');
    expect(error.hint).toMatch(/free some space.*run the same command again/);
  });

  it('is found behind a wrapping error (the cause chain)', () => {
    const wrapped = new CompanyctlError('COMPANYCTL_INTERNAL', 'writing the rejects file failed', { cause: enospc() });
    expect(diskFullError(wrapped)?.code).toBe('COMPANYCTL_DISK_FULL');
    expect(diskFullError(new Error('something else'))).toBeUndefined();
  });

  it('SQLITE_FULL from the store maps to COMPANYCTL_DISK_FULL', () => {
    const home = tempHome();
    try {
      const file = join(home.home, 'full.db');
      const db = new Database(file);
      db.exec('create table t (x blob)');
      db.pragma('max_page_count = 8');
      let caught: unknown;
      try {
        for (let i = 0; i < 100; i++) db.prepare('insert into t values (randomblob(4000))').run();
      } catch (e) {
        caught = e;
      }
      db.close();
      expect((caught as { code?: string }).code).toBe('SQLITE_FULL');
      const mapped = toStoreError(resolveStoreLocation(file, file), caught) as CompanyctlError;
      expect(mapped.code).toBe('COMPANYCTL_DISK_FULL');
      expect(report(mapped).code).toBe(1);
    } finally {
      home.cleanup();
    }
  });
});
