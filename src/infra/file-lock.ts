// A lock file next to a state file, so concurrent companyctl processes on one host take turns
// at read-modify-write (the audit chain's last hash, the metrics counters). Synchronous: the
// critical sections are a few file operations. A lock left by a killed process is taken over
// once its owner is gone or it is older than STALE_MS.
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { CompanyctlError } from '../errors.js';

const STALE_MS = 30_000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export function withFileLock<T>(lockFile: string, fn: () => T, timeoutMs = 10_000): T {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 1; ; wait = Math.min(wait * 2, 25)) {
    let fd: number;
    try {
      fd = openSync(lockFile, 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (isStale(lockFile)) {
        try {
          unlinkSync(lockFile);
        } catch {
          // another process took it over first
        }
        continue;
      }
      if (Date.now() > deadline) {
        throw new CompanyctlError('COMPANYCTL_STATE_LOCKED', `${lockFile} is held by another companyctl`, {
          hint: 'try again in a moment; remove the lock file if no companyctl is running',
        });
      }
      Atomics.wait(sleeper, 0, 0, wait);
      continue;
    }
    try {
      writeSync(fd, String(process.pid));
    } finally {
      closeSync(fd);
    }
    try {
      return fn();
    } finally {
      try {
        unlinkSync(lockFile);
      } catch {
        // already gone: nothing to release
      }
    }
  }
}

function isStale(lockFile: string): boolean {
  try {
    if (Date.now() - statSync(lockFile).mtimeMs > STALE_MS) return true;
    const pid = Number(readFileSync(lockFile, 'utf8'));
    if (!Number.isInteger(pid) || pid <= 0) return false; // being written right now
    process.kill(pid, 0);
    return false;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ESRCH';
  }
}
