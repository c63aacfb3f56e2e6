// The one set of flag parsers: durations, times and whole numbers, with their ranges.
import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, parseTime, parseWholeNumber } from '../../src/io/flags.js';

const now = new Date('2026-06-15T12:00:00Z');
const code = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return (e as { code: string }).code;
  }
};

describe('parseDuration', () => {
  it('reads units and a bare number in the flag\'s own unit', () => {
    expect(parseDuration('--x', '90m')).toBe(90 * 60_000);
    expect(parseDuration('--x', '2w')).toBe(14 * 86_400_000);
    expect(parseDuration('--wait', '30', { units: ['s', 'm'], bareUnit: 's' })).toBe(30_000);
    expect(parseDuration('--wait', '1.5s', { units: ['s'] })).toBe(1500);
  });
  it('refuses other units, no unit, and values out of range as usage errors', () => {
    expect(code(() => parseDuration('--x', '30'))).toBe('COMPANYCTL_USAGE');
    expect(code(() => parseDuration('--x', '30s'))).toBe('COMPANYCTL_USAGE');
    expect(code(() => parseDuration('--x', 'soon'))).toBe('COMPANYCTL_USAGE');
    expect(code(() => parseDuration('--x', '400d', { max: 366 * 86_400_000 }))).toBe('COMPANYCTL_USAGE');
    expect(code(() => parseDuration('--x', '99999999999999999999w'))).toBe('COMPANYCTL_USAGE');
    expect(code(() => parseDuration('--x', '0m', { min: 60_000 }))).toBe('COMPANYCTL_USAGE');
  });
  it('formats a limit in its largest whole unit', () => {
    expect(formatDuration(366 * 86_400_000)).toBe('366d');
    expect(formatDuration(30_000)).toBe('30s');
  });
});

describe('parseTime', () => {
  it('reads a date (UTC midnight), an ISO time and an age before now', () => {
    expect(parseTime('--since', '2026-01-31', now).toISOString()).toBe('2026-01-31T00:00:00.000Z');
    expect(parseTime('--since', '2026-01-31T08:30:00Z', now).toISOString()).toBe('2026-01-31T08:30:00.000Z');
    expect(parseTime('--since', '36h', now).toISOString()).toBe('2026-06-14T00:00:00.000Z');
  });
  it('refuses days that do not exist, years out of range and ages past 100 years', () => {
    for (const v of ['2026-02-30', '2026-13-01', '0000-01-01', '+275760-09-13', '999999999d', 'yesterday', 'Jan 5 2026']) {
      expect(code(() => parseTime('--since', v, now)), v).toBe('COMPANYCTL_USAGE');
    }
  });
});

describe('parseWholeNumber', () => {
  it('takes whole numbers in range only', () => {
    expect(parseWholeNumber('--limit', '50')).toBe(50);
    expect(code(() => parseWholeNumber('--limit', '0'))).toBe('COMPANYCTL_USAGE');
    expect(code(() => parseWholeNumber('--limit', '1.5'))).toBe('COMPANYCTL_USAGE');
    expect(code(() => parseWholeNumber('--limit', '1e3'))).toBe('COMPANYCTL_USAGE');
    expect(code(() => parseWholeNumber('--limit', '9007199254740993'))).toBe('COMPANYCTL_USAGE');
    expect(code(() => parseWholeNumber('--n', '11', { min: 1, max: 10 }))).toBe('COMPANYCTL_USAGE');
  });
});
