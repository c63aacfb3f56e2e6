// The one date parser: company dates (YYYY-MM-DD), import cells and time flags
// (--updated-since, audit --since/--until) all take calendar dates through isCalendarDate,
// so 2024-02-30 is refused everywhere. Pure, no I/O.

/** YYYY-MM-DD of a real calendar date from year 1000 on, checked by hand (the import's hot path). */
function isPlainDate(s: string): boolean {
  if (s.length !== 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return false;
  let y = 0;
  for (let i = 0; i < 4; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    y = y * 10 + d;
  }
  const m1 = s.charCodeAt(5) - 48;
  const m2 = s.charCodeAt(6) - 48;
  const d1 = s.charCodeAt(8) - 48;
  const d2 = s.charCodeAt(9) - 48;
  if (m1 < 0 || m1 > 9 || m2 < 0 || m2 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return false;
  const m = m1 * 10 + m2;
  const d = d1 * 10 + d2;
  if (y < 1000 || m < 1 || m > 12 || d < 1) return false;
  const days = m === 2 ? ((y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28) : m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
  return d <= days;
}

/** `s` is exactly YYYY-MM-DD and names a day that exists (no 2024-02-30, no month 13). */
export function isCalendarDate(s: string): boolean {
  if (isPlainDate(s)) return true;
  // Below year 1000 Date.UTC's two-digit years need the general check.
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toISOString().slice(0, 10) === s;
}

const ISO_TIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * A date (midnight UTC) or an ISO 8601 time (UTC unless it names an offset) -> epoch ms;
 * undefined for anything else, including impossible dates and times.
 */
export function parseInstant(value: string): number | undefined {
  const s = value.trim();
  if (isCalendarDate(s)) return Date.parse(`${s}T00:00:00Z`);
  const m = ISO_TIME.exec(s);
  if (!m || !isCalendarDate(m[1]!) || Number(m[2]) > 23 || Number(m[3]) > 59 || Number(m[4] ?? 0) > 59) return undefined;
  const t = Date.parse(`${s.replace(' ', 'T')}${m[5] ? '' : 'Z'}`);
  return Number.isNaN(t) ? undefined : t;
}
