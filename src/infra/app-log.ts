// The JSON application log: one line per event (time, level, code, message, command), 0600 in
// the state folder, rotated to app.log.1 past 10 MiB. Callers pass text with secrets removed.
// Best effort: a log that cannot be written never changes a command's outcome.
import { appendFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from './paths.js';

export interface AppLogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  code: string;
  message: string;
  command?: string;
  exitCode?: number;
  [extra: string]: unknown;
}

const MAX_BYTES = 10 * 1024 * 1024;

export function appLogFile(stateDir: string): string {
  return join(stateDir, 'app.log');
}

export function writeAppLog(stateDir: string, entry: AppLogEntry, now = new Date()): void {
  try {
    ensurePrivateDir(stateDir);
    const file = appLogFile(stateDir);
    try {
      if (statSync(file).size > MAX_BYTES) renameSync(file, `${file}.1`);
    } catch {
      // no log yet
    }
    appendFileSync(file, `${JSON.stringify({ time: now.toISOString(), ...entry, pid: process.pid })}\n`, { mode: 0o600 });
  } catch {
    // best effort: see above
  }
}
