// The "worker" section of the config file, checked in full when used.
import type { Dialect } from '../../infra/db/store.js';
import { section } from '../events-settings.js';

export interface WorkerConfig {
  /** A job or worker silent for this long is taken over / shown as gone (default 30). */
  leaseSeconds?: number;
  /** How often the worker beats (store row and leases; default 5). */
  heartbeatSeconds?: number;
  /** How often it looks for events and jobs without being woken (SQLite default 0.2, PostgreSQL 5). */
  pollSeconds?: number;
  /** How long a job that found its input busy (the same import running elsewhere) waits (default 10). */
  retryAfterSeconds?: number;
  /** Claims of one job before it is failed as a job that kills its workers (default 5). */
  maxAttempts?: number;
}

export interface WorkerSettings {
  leaseMs: number;
  heartbeatMs: number;
  pollMs: number;
  retryAfterMs: number;
  maxAttempts: number;
}

const KEYS: Record<keyof WorkerConfig, 'number'> = {
  leaseSeconds: 'number',
  heartbeatSeconds: 'number',
  pollSeconds: 'number',
  retryAfterSeconds: 'number',
  maxAttempts: 'number',
};

export function workerSettings(config: { worker?: unknown }, dialect: Dialect): WorkerSettings {
  const w = section<WorkerConfig>('worker', config.worker, KEYS);
  const ms = (v: number | undefined, d: number, min: number) => Math.max(min, Math.round((v ?? d) * 1000));
  const leaseMs = ms(w.leaseSeconds, 30, 2000);
  return {
    leaseMs,
    // At least three beats per lease, so one slow beat never loses a job.
    heartbeatMs: Math.min(ms(w.heartbeatSeconds, 5, 100), Math.floor(leaseMs / 3)),
    pollMs: ms(w.pollSeconds, dialect === 'postgresql' ? 5 : 0.2, 20),
    retryAfterMs: ms(w.retryAfterSeconds, 10, 0),
    maxAttempts: Math.max(1, Math.round(w.maxAttempts ?? 5)),
  };
}
