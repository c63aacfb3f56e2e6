import { describe, expect, it } from 'vitest';
import { joinListCell, splitListCell } from '../../src/domain/list-cell.js';
import { validateNewCompany } from '../../src/domain/validate.js';
import { csvCell } from '../../src/services/export.js';

/** mulberry32: a seeded generator, so a failing case can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Characters that matter to the cell's syntax or to CSV, then any BMP or astral code point.
const TRICKY = [',', ';', ':', '\\', '"', "'", ' ', '\t', '\n', '\r', '=', '+', '-', '@', '\u00e9', '\ufeff', '\u{1f600}'];
function arbitraryString(r: () => number, max: number): string {
  const len = 1 + Math.floor(r() * max);
  let s = '';
  for (let i = 0; i < len; i++) {
    const pick = r();
    if (pick < 0.5) s += TRICKY[Math.floor(r() * TRICKY.length)];
    else if (pick < 0.8) s += String.fromCharCode(32 + Math.floor(r() * 95));
    else s += String.fromCodePoint(0xa0 + Math.floor(r() * 0x2ff00));
  }
  return s;
}

describe('list cells', () => {
  it('round-trips arbitrary items (2,000 seeded lists)', () => {
    for (let seed = 1; seed <= 2000; seed++) {
      const r = rng(seed);
      const items = Array.from({ length: 1 + Math.floor(r() * 4) }, () => arbitraryString(r, 12));
      expect(splitListCell(joinListCell(items)), `seed ${seed}`).toEqual(items);
    }
  });

  it('round-trips arbitrary external ids through export and create (500 seeded companies)', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const r = rng(seed);
      const ids = Array.from({ length: 1 + Math.floor(r() * 3) }, (_, k) => ({ source: `s${k}`, id: arbitraryString(r, 20) }))
        // What create accepts and stores: no control characters (refused on input), trimmed, non-empty.
        .map((e) => ({ ...e, id: e.id.replace(/[\u0000-\u001f\u007f-\u009f]/g, '_').trim() || 'x' }));
      const stored = validateNewCompany({ name: 'Acme', externalIds: ids }).externalIds;
      const cell = csvCell(stored);
      expect(validateNewCompany({ name: 'Acme', externalIds: cell }).externalIds, `seed ${seed}: ${JSON.stringify(cell)}`).toEqual(stored);
    }
  });

  it('writes the issue\'s id with an escaped comma, and reads old cells as before', () => {
    expect(csvCell([{ source: 'crm', id: 'A,1' }])).toBe('crm:A\\,1');
    expect(splitListCell('crm:1;sec:2,lei:3')).toEqual(['crm:1', 'sec:2', 'lei:3']);
    expect(splitListCell('crm:C:\\path')).toEqual(['crm:C:\\path']);
  });
});
