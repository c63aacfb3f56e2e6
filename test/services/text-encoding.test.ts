import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { detectEncoding } from '../../src/services/text-encoding.js';
import { ROOT } from '../helpers.js';

const fixture = (name: string) => readFileSync(join(ROOT, 'fixtures', 'import', name));

describe('detectEncoding', () => {
  it.each([
    ['companies.csv', 'utf-8'],
    ['companies-windows1252.csv', 'windows-1252'],
    ['companies-latin1.tsv', 'windows-1252'],
    ['companies-macroman.csv', 'macintosh'],
    ['companies-cp850.csv', 'cp850'],
    ['companies-windows1250.csv', 'windows-1250'],
    ['companies-windows1251.csv', 'windows-1251'],
    ['companies-shiftjis.csv', 'shift_jis'],
  ])('reads %s as %s', async (file, encoding) => {
    expect((await detectEncoding(fixture(file), true)).encoding).toBe(encoding);
  });

  it('names Mac Roman for one short line (the hint used to say windows-1252)', async () => {
    const guess = await detectEncoding(iconv.encode('name\nNestlé Suisse\n', 'macintosh'), true);
    expect(guess).toEqual({ encoding: 'macintosh', label: 'Mac Roman' });
    expect((await detectEncoding(iconv.encode('name\nNestlé Suisse\n', 'windows-1252'), true)).encoding).toBe('windows-1252');
  });

  it('takes a sample cut inside a UTF-8 sequence as UTF-8', async () => {
    const b = Buffer.from('name\nMüller', 'utf8');
    expect((await detectEncoding(b.subarray(0, b.length - 5), false)).encoding).toBe('utf-8');
  });
});
