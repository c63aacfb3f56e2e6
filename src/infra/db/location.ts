// Where the store is: a SQLite path or a postgresql:// URL. Pure, cheap to import.
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { CompanyctlError } from '../../errors.js';
import type { Dialect } from './migrations/names.js';

export interface StoreLocation {
  dialect: Dialect;
  /** File path (SQLite) or connection URL (PostgreSQL). May hold a password: never print it. */
  target: string;
  /** Safe to print: the path, or the URL without its password. */
  display: string;
  /** Stable id of this location, used to keep caches of different stores apart. */
  key: string;
}

export function resolveStoreLocation(db: string | undefined, defaultDb: string): StoreLocation {
  const raw = db && db.trim() !== '' ? db.trim() : defaultDb;
  if (/^postgres(ql)?:\/\//i.test(raw)) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new CompanyctlError('COMPANYCTL_USAGE', '--db: not a valid postgresql:// URL', { field: '--db' });
    }
    const safe = new URL(url.href);
    if (safe.password) safe.password = '***';
    const keyUrl = new URL(url.href);
    keyUrl.password = '';
    return { dialect: 'postgresql', target: url.href, display: safe.href, key: hash(`pg:${keyUrl.href}`) };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `--db: unsupported store URL scheme in ${JSON.stringify(raw.split('://')[0])}`, {
      field: '--db',
      hint: 'use a SQLite file path or a postgresql:// URL',
    });
  }
  const given = resolve(raw.replace(/^sqlite:(\/\/)?/, ''));
  // One file, one cache and one login, whatever symlinked path leads to it.
  const path = existsSync(given) ? realpathSync(given) : given;
  return { dialect: 'sqlite', target: path, display: path, key: hash(`sqlite:${path}`) };
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 16);
}

