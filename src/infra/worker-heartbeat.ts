// The worker's heartbeat file in this host's state folder, one per store: what `company get`
// checks, without opening the store, before trusting its cache beyond the short TTL. Written
// atomically (temp file + rename) every heartbeat; a cheap stat-free read of a small JSON file.
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from './paths.js';
import { lockOwnerProcess } from './run-lock.js';

export interface Heartbeat {
  workerId: string;
  host: string;
  pid: number;
  /** Epoch ms of the last beat. */
  beatAt: number;
  /** Epoch ms since which the worker has heard every change of the store (null: it does not listen). */
  listeningSince: number | null;
}

export function heartbeatFile(stateDir: string, storeKey: string): string {
  return join(stateDir, 'workers', `${storeKey}.json`);
}

export function writeHeartbeat(stateDir: string, storeKey: string, hb: Heartbeat): void {
  const file = heartbeatFile(stateDir, storeKey);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(hb), { mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    ensurePrivateDir(join(stateDir, 'workers'));
    writeFileSync(tmp, JSON.stringify(hb), { mode: 0o600 });
  }
  renameSync(tmp, file);
}

export function readHeartbeat(stateDir: string, storeKey: string): Heartbeat | undefined {
  try {
    const hb = JSON.parse(readFileSync(heartbeatFile(stateDir, storeKey), 'utf8')) as Heartbeat;
    return typeof hb.beatAt === 'number' && typeof hb.pid === 'number' ? hb : undefined;
  } catch {
    return undefined;
  }
}

/** Remove the file if this worker wrote it last (another worker of this host keeps beating otherwise). */
export function removeHeartbeat(stateDir: string, storeKey: string, workerId: string): void {
  if (readHeartbeat(stateDir, storeKey)?.workerId !== workerId) return;
  try {
    unlinkSync(heartbeatFile(stateDir, storeKey));
  } catch {
    // already gone
  }
}

/**
 * Since when a live worker of this host has heard every change of this store, or undefined when
 * none is alive (no beat within `maxAgeMs`, or its process is gone) or it does not listen.
 */
export function listeningSince(stateDir: string, storeKey: string, maxAgeMs: number, now = Date.now()): number | undefined {
  const hb = readHeartbeat(stateDir, storeKey);
  if (!hb || hb.listeningSince === null || now - hb.beatAt > maxAgeMs) return undefined;
  if (lockOwnerProcess(`${hb.host}:${hb.pid}`) === 'dead') return undefined;
  return hb.listeningSince;
}
