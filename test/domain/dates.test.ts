// The one date parser behind company dates, import cells and the time flags.
import { describe, expect, it } from 'vitest';
import { isCalendarDate, parseInstant } from '../../src/domain/dates.js';
import { parseTime } from '../../src/io/flags.js';
import * as n from '../../src/domain/normalise.js';

const now = new Date('2026-11-25T12:00:00Z');

describe('one date parser', () => {
  it('knows which days exist', () => {
    for (const ok of ['2024-02-29', '2000-02-29', '2026-12-31', '0999-01-01', '1000-01-01']) expect(isCalendarDate(ok), ok).toBe(true);
    for (const bad of ['2024-02-30', '2023-02-29', '1900-02-29', '2026-04-31', '2026-13-01', '2026-00-10', '2026-01-00', '0050-01-01', '2026-1-01', ' 2026-01-01', '2026/01/01']) {
      expect(isCalendarDate(bad), bad).toBe(false);
    }
  });

  it('parses ISO times strictly, UTC unless an offset is given', () => {
    expect(parseInstant('2024-02-29')).toBe(Date.parse('2024-02-29T00:00:00Z'));
    expect(parseInstant('2026-01-31T10:00')).toBe(Date.parse('2026-01-31T10:00:00Z'));
    expect(parseInstant('2026-01-31 10:00:05.5+02:00')).toBe(Date.parse('2026-01-31T08:00:05.500Z'));
    for (const bad of ['2024-02-30', '2024-02-30T00:00:00Z', '2026-01-31T24:00', '2026-01-31T10:60', 'Dec 1 2026', 'yesterday', '']) expect(parseInstant(bad), bad).toBeUndefined();
  });

  it('--updated-since, audit --since and --incorporation-date agree on 2024-02-30', () => {
    expect(() => parseTime('--updated-since', '2024-02-30', now)).toThrow(/--updated-since/);
    expect(() => parseTime('--since', '2024-02-30', now)).toThrow(/--since/);
    expect(() => n.normaliseDate('2024-02-30', now)).toThrow(/is not a date/);
    expect(parseTime('--updated-since', '2024-02-29', now).toISOString()).toBe('2024-02-29T00:00:00.000Z');
    expect(parseTime('--until', '2024-02-29', now).toISOString()).toBe('2024-02-29T00:00:00.000Z');
    expect(n.normaliseDate('2024-02-29', now)).toBe('2024-02-29');
    expect(parseTime('--updated-since', '36h', now).toISOString()).toBe('2026-11-24T00:00:00.000Z');
  });
});
