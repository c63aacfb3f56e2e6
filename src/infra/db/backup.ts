// SQLite backups: VACUUM INTO reads one snapshot (WAL: writers keep writing meanwhile; the
// backup API would restart at every write of another connection and might never finish), and a
// restore through SQLite's backup API, which writes into a store other processes may hold open.
import { chmodSync, closeSync, existsSync, openSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { CompanyctlError } from '../../errors.js';
import { ensurePrivateDir } from '../paths.js';
import { readSchemaStatus, type SchemaStatus } from './store.js';

export interface BackupCheck {
  file: string;
  schema: SchemaStatus;
  companies: number;
  auditEntries: number;
  pages: number;
}

/** Copy the live store at `source` to a new 0600 file, then open the copy and check it. */
export async function backupSqlite(source: string, file: string): Promise<BackupCheck> {
  if (existsSync(file)) throw new CompanyctlError('COMPANYCTL_USAGE', `${file} exists; a backup never overwrites a file`, { field: 'file', hint: 'name a new file' });
  const { default: Database } = await import('better-sqlite3');
  if (!existsSync(dirname(file))) ensurePrivateDir(dirname(file));
  // Created 0600 before a byte is written, so the copy is never readable by others.
  closeSync(openSync(file, 'wx', 0o600));
  const db = new Database(source, { fileMustExist: true, readonly: true });
  try {
    db.pragma('busy_timeout = 5000');
    db.prepare('vacuum into ?').run(file);
  } catch (e) {
    rmSync(file, { force: true });
    throw e;
  } finally {
    db.close();
  }
  chmodSync(file, 0o600);
  return checkSqliteStore(file);
}

/** Open a SQLite store file read-only: integrity, schema, a few counts. */
export async function checkSqliteStore(file: string): Promise<BackupCheck> {
  const { default: Database } = await import('better-sqlite3');
  let db: import('better-sqlite3').Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `${file} cannot be opened as a SQLite store: ${(e as Error).message}`, { field: 'file' });
  }
  try {
    const bad = () => new CompanyctlError('COMPANYCTL_INVALID_INPUT', `${file} is not a companyctl store`, { field: 'file' });
    let integrity: string;
    try {
      integrity = String(db.pragma('quick_check', { simple: true }));
    } catch {
      throw bad();
    }
    if (integrity !== 'ok') throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `${file} is damaged (quick_check: ${integrity})`, { field: 'file' });
    const read = { all: async <T>(sql: string, params: unknown[] = []) => db.prepare(sql).all(...params) as T[] };
    const schema = await readSchemaStatus(read);
    if (!schema.initialised) throw bad();
    const count = (t: string) => {
      try {
        return Number((db.prepare(`select count(*) as n from ${t}`).get() as { n: number }).n);
      } catch {
        return 0;
      }
    };
    return { file, schema, companies: count('company'), auditEntries: count('audit_entry'), pages: Number(db.pragma('page_count', { simple: true })) };
  } finally {
    db.close();
  }
}

/** Write the backup `file` into the store at `target` (created 0600 if absent) through the backup API. */
export async function restoreSqlite(file: string, target: string): Promise<void> {
  const { default: Database } = await import('better-sqlite3');
  if (!existsSync(target)) {
    if (!existsSync(dirname(target))) ensurePrivateDir(dirname(target));
    closeSync(openSync(target, 'a', 0o600));
  }
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    await db.backup(target);
  } finally {
    db.close();
  }
  chmodSync(target, 0o600);
}
