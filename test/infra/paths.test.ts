// ensurePrivateDir makes new folders 0700 and leaves folders that already exist alone.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from '../../src/infra/paths.js';
import { tempHome } from '../helpers.js';

let home: ReturnType<typeof tempHome>;
beforeEach(() => (home = tempHome()));
afterEach(() => home.cleanup());

it('chmods only the folders it created', () => {
  const shared = join(home.home, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  ensurePrivateDir(shared);
  expect(statSync(shared).mode & 0o7777).toBe(0o1777);
  const old = process.umask(0o022);
  try {
    ensurePrivateDir(join(shared, 'a', 'b'));
  } finally {
    process.umask(old);
  }
  expect(statSync(shared).mode & 0o7777).toBe(0o1777);
  expect(statSync(join(shared, 'a')).mode & 0o777).toBe(0o700);
  expect(statSync(join(shared, 'a', 'b')).mode & 0o777).toBe(0o700);
});
