// A file cache: one JSON file per key under <cacheDir>/<store key>/, written atomically
// (temp file + rename), 0600 files in 0700 folders. Hit and miss counters are one byte
// appended per event, so concurrent processes never lose a count to a read-modify-write.
// Every invalidation first replaces a random generation token, then drops entries; a fill
// made from a store read that started before the token changed is undone (see fill()).
import { randomBytes } from 'node:crypto';
import { appendFileSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from './paths.js';

const GENERATION = 'generation';

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

  /** Invalidate every entry whose key starts with `prefix` (a new generation first, as delete does); returns how many. */
  dropPrefix(prefix: string): number {
    this.bumpGeneration();
    const start = encodeURIComponent(prefix);
    const keys = this.list()
      .filter((n) => n.startsWith(start) && n.endsWith('.json'))
      .map((n) => decodeURIComponent(n.slice(0, -'.json'.length)));
    this.unlink(keys);
    return keys.length;
  }

  record(outcome: 'hit' | 'miss'): void {
    this.count(outcome === 'hit' ? 'hits' : 'misses');
  }

  set<T>(key: string, value: T, ttlSeconds: number): void {
    this.write(key, value, ttlSeconds);
  }

  /**
   * The current generation: take it before reading the store, and hand it to fill(). Changes
   * whenever any entry is invalidated (delete or clear), by any process.
   */
  generation(): string {
    try {
      return readFileSync(join(this.dir, GENERATION), 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * Cache values read from the store after `generation` was taken. If an invalidation happened
   * since, the fill may hold data older than a committed write: it is removed again. Because
   * invalidations change the generation before dropping entries, either that drop removes our
   * entries or our check below sees the new generation. Returns whether the fill stands.
   */
  fill(entries: Iterable<readonly [string, unknown]>, ttlSeconds: number, generation: string): boolean {
    const keys: string[] = [];
    if (this.generation() !== generation) return false;
    for (const [key, value] of entries) {
      keys.push(key);
      this.write(key, value, ttlSeconds);
    }
    if (this.generation() === generation) return true;
    this.unlink(keys);
    return false;
  }

  private write<T>(key: string, value: T, ttlSeconds: number): void {
    this.ensure();
    const entry: Entry<T> = {
      storedAt: new Date(this.now()).toISOString(),
      expiresAt: ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 : null,
      value,
    };
    const file = this.file(key);
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    renameSync(tmp, file);
  }

  /** Invalidate: a new generation first (so concurrent fills notice), then drop the entries. */
  delete(keys: Iterable<string>): void {
    this.bumpGeneration();
    this.unlink(keys);
  }

  private unlink(keys: Iterable<string>): void {
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
    this.bumpGeneration();
    const names = this.list();
    for (const name of names) {
      if (name !== GENERATION) rmSync(join(this.dir, name), { recursive: true, force: true });
    }
    return names.filter((n) => n.endsWith('.json')).length;
  }

  private bumpGeneration(): void {
    this.ensure();
    const file = join(this.dir, GENERATION);
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    writeFileSync(tmp, randomBytes(16).toString('hex'), { mode: 0o600 });
    renameSync(tmp, file);
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
