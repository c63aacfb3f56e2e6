// The run lock of long jobs kept in the store (import jobs, enrich runs): a row names its
// owner as host:pid:nonce and carries a heartbeat. Whether that owner still runs is known for
// certain on its own host (ask the OS); elsewhere only its heartbeat can tell.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';

/** This process, as a lock owner: host, pid and a nonce (several runs may share a pid in tests). */
export function newLockOwner(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

/** The owner's process: 'alive' or 'dead' when it is on this host, else 'unknown' (another host). */
export function lockOwnerProcess(owner: string | null): 'alive' | 'dead' | 'unknown' {
  if (!owner) return 'dead';
  const [host, pid] = owner.split(':');
  if (host !== hostname() || !pid || !/^\d+$/.test(pid)) return 'unknown';
  try {
    process.kill(Number(pid), 0);
    return 'alive';
  } catch (e) {
    // EPERM: the process exists under another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? 'alive' : 'dead';
  }
}

/** Whether the lock's holder runs: its process on this host, or a heartbeat newer than staleMs. */
export function lockHolderAlive(owner: string | null, heartbeatAt: string | null, now: Date, staleMs: number): boolean {
  const p = lockOwnerProcess(owner);
  if (p !== 'unknown') return p === 'alive';
  return !!heartbeatAt && now.getTime() - Date.parse(heartbeatAt) < staleMs;
}

/** The host and pid of a lock owner, for messages. */
export function describeLockOwner(owner: string | null): { host: string; pid: string } {
  const [host = '', pid = ''] = (owner ?? '').split(':');
  return { host, pid };
}
