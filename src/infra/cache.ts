// A file cache: one JSON file per key under <cacheDir>/<store key>/, written atomically
// (temp file + rename), 0600 files in 0700 folders. Hit and miss counters are one byte
// appended per event, so concurrent processes never lose a count to a read-modify-write.
import { appendFileSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from './paths.js';

interface Entry<T> {
  storedAt: string;
  /** Epoch ms after which the entry is stale; null for "until invalidated". */
  expiresAt: number | null;
  value: T;
}

/** How long entries are believed: `maxAgeMs` after they were stored, or until they expire if stored at or after `since`. */
export interface CacheTrust {
  maxAgeMs: number;
  since?: number;
}

export interface CacheStats {
  dir: string;
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
}

export class FileCache {
  private readonly dir: string;
  private ensured = false;

  constructor(
    readonly rootDir: string,
    storeKey: string,
    private readonly now: () => number = Date.now,
  ) {
    this.dir = join(rootDir, storeKey);
  }

  /**
   * The live value under `key`, or undefined. Counts nothing: callers record one hit or miss per
   * lookup. With `trust`, an entry older than `maxAgeMs` counts only if stored at or after `since`.
   */
  get<T>(key: string, trust?: CacheTrust): T | undefined {
    let entry: Entry<T>;
    try {
      entry = JSON.parse(readFileSync(this.file(key), 'utf8')) as Entry<T>;
    } catch {
      return undefined;
    }
    const now = this.now();
    if (entry.expiresAt !== null && entry.expiresAt <= now) return undefined;
    if (trust) {
      const at = Date.parse(entry.storedAt);
      if (!(now - at <= trust.maxAgeMs || (trust.since !== undefined && at >= trust.since))) return undefined;
    }
    return entry.value;
  }

  /** Remove every entry whose key starts with `prefix`; returns how many. */
  dropPrefix(prefix: string): number {
    const start = encodeURIComponent(prefix);
    let n = 0;
    for (const name of this.list()) {
      if (!name.startsWith(start) || !name.endsWith('.json')) continue;
      try {
        unlinkSync(join(this.dir, name));
        n++;
      } catch {
        // removed by another process meanwhile
      }
    }
    return n;
  }

  record(outcome: 'hit' | 'miss'): void {
    this.count(outcome === 'hit' ? 'hits' : 'misses');
  }

  /** `asOf`: when the value was read from its source (default now); its age counts from then. */
  set<T>(key: string, value: T, ttlSeconds: number, asOf = this.now()): void {
    this.ensure();
    const entry: Entry<T> = {
      storedAt: new Date(asOf).toISOString(),
      expiresAt: ttlSeconds > 0 ? asOf + ttlSeconds * 1000 : null,
      value,
    };
    const file = this.file(key);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    renameSync(tmp, file);
  }

  delete(keys: Iterable<string>): void {
    for (const key of keys) {
      try {
        unlinkSync(this.file(key));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  }

  stats(): CacheStats {
    let entries = 0;
    let bytes = 0;
    for (const name of this.list()) {
      if (!name.endsWith('.json')) continue;
      entries++;
      bytes += statSync(join(this.dir, name)).size;
    }
    return { dir: this.dir, entries, bytes, hits: this.counter('hits'), misses: this.counter('misses') };
  }

  /** Remove every entry and reset the counters. Returns how many entries were removed. */
  clear(): number {
    const removed = this.list().filter((n) => n.endsWith('.json')).length;
    rmSync(this.dir, { recursive: true, force: true });
    this.ensured = false;
    return removed;
  }

  private list(): string[] {
    try {
      return readdirSync(this.dir);
    } catch {
      return [];
    }
  }

  private file(key: string): string {
    return join(this.dir, `${encodeURIComponent(key)}.json`);
  }

  private ensure(): void {
    if (!this.ensured) ensurePrivateDir(this.dir);
    this.ensured = true;
  }

  private count(which: 'hits' | 'misses'): void {
    try {
      this.ensure();
      appendFileSync(join(this.dir, `${which}.count`), '.', { mode: 0o600 });
    } catch {
      // Counters are best effort; a read-only cache folder must not fail a read.
    }
  }

  private counter(which: 'hits' | 'misses'): number {
    try {
      return statSync(join(this.dir, `${which}.count`)).size;
    } catch {
      return 0;
    }
  }
}
