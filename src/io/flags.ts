// Flag value parsers, one per concept (whole numbers, durations, times): each refuses a value
// out of range as a usage error (exit 2) that names the flag, never an internal error later.
import { CompanyctlError } from '../errors.js';
import { parseInstant } from '../domain/dates.js';

export function usageError(flag: string, message: string, hint?: string): CompanyctlError {
  return new CompanyctlError('COMPANYCTL_USAGE', `${flag}: ${message}`, { field: flag, hint });
}

export function parseVersionFlag(value: string | undefined, flag = '--if-version'): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw usageError(flag, `${JSON.stringify(value)} is not a version number`);
  return Number(value);
}

/** A whole number >= 1 from a flag, or undefined when the flag was not given. */
export function parsePositiveInt(value: string | undefined, flag: string): number | undefined {
  return value === undefined ? undefined : parseWholeNumber(flag, value);
}

/** A whole number in [min, max] (default: 1 up to Number.MAX_SAFE_INTEGER). */
export function parseWholeNumber(flag: string, value: string, opts: { min?: number; max?: number; what?: string } = {}): number {
  const min = opts.min ?? 1;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  const v = value.trim();
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) {
    const range = opts.max === undefined ? (min === 1 ? 'a positive whole number' : `a whole number of at least ${min}`) : `a whole number from ${min} to ${max}`;
    throw usageError(flag, `${JSON.stringify(value)} is not ${opts.what ? `${opts.what} (${range})` : range}`);
  }
  return n;
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
type Unit = keyof typeof UNIT_MS;

/** The longest age or duration any flag takes: 100 years (a date beyond it is not a time). */
const MAX_DURATION_MS = 100 * 366 * UNIT_MS.d;

/**
 * "250ms", "30s", "5m", "12h", "7d", "2w" -> milliseconds, within (0 or min, max]. A bare number
 * means `bareUnit` when one is given (e.g. seconds for --wait), and is refused otherwise.
 */
export function parseDuration(
  flag: string,
  value: string,
  opts: { units?: readonly Unit[]; bareUnit?: Unit; min?: number; max?: number; example?: string } = {},
): number {
  const units = opts.units ?? (['m', 'h', 'd', 'w'] as const);
  const max = Math.min(opts.max ?? MAX_DURATION_MS, MAX_DURATION_MS);
  const example = opts.example ?? units.map((u, i) => `${[30, 12, 7, 2, 1, 1][i]}${u}`).join(', ');
  const m = /^(\d+(?:\.\d+)?)([a-z]*)$/.exec(value.trim());
  const unit = (m?.[2] || opts.bareUnit) as Unit | undefined;
  if (!m || !unit || !units.includes(unit)) throw usageError(flag, `${JSON.stringify(value)} is not a duration (${example})`);
  const ms = Number(m[1]) * UNIT_MS[unit];
  if (!Number.isFinite(ms) || ms < (opts.min ?? 0) || ms > max) {
    throw usageError(flag, `${JSON.stringify(value)} is out of range (${formatDuration(opts.min ?? 0)} to ${formatDuration(max)})`);
  }
  return ms;
}

/** Milliseconds -> the largest whole unit ("366d", "30s"), for messages. */
export function formatDuration(ms: number): string {
  for (const u of ['w', 'd', 'h', 'm', 's'] as const) if (ms >= UNIT_MS[u] && ms % UNIT_MS[u] === 0) return `${ms / UNIT_MS[u]}${u}`;
  return `${ms}ms`;
}

/**
 * A point in time: "2026-01-31" (UTC midnight), an ISO time, or an age before `now` ("7d",
 * "36h", "90m", "2w"). Years 1000-9999 only, so a typo never reaches the database as a date.
 */
export function parseTime(flag: string, value: string, now: Date): Date {
  const v = value.trim();
  if (/^\d+(?:\.\d+)?[a-z]+$/.test(v)) return new Date(now.getTime() - parseDuration(flag, v, { example: '90m, 36h, 7d, 2w' }));
  const t = parseInstant(v) ?? NaN;
  const d = new Date(t);
  if (Number.isNaN(t) || d.getUTCFullYear() < 1000 || d.getUTCFullYear() > 9999) {
    throw usageError(flag, `${JSON.stringify(value)} is not a date, time or age (2026-01-31, 2026-01-31T08:00:00Z, 7d, 36h)`);
  }
  return d;
}
