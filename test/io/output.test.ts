// The output layer: tables that fit the terminal, compact records, headers and raw numbers in
// pipes, colour only where wanted, and no control character from the data reaching a terminal.
import { describe, expect, it } from 'vitest';
import { createTestContext } from '../../src/context.js';
import { cell, fitWidths, plainLine, writeCompany, writeList, writeRecord, writeTable } from '../../src/io/output.js';
import { colourLevel } from '../../src/io/colour.js';
import type { Company } from '../../src/domain/company.js';

const ESC = '\u001b';
const company = {
  id: 7,
  name: 'Acme',
  legalName: null,
  domain: 'acme.de',
  tags: ['a', 'b'],
  externalIds: [{ source: 'crm', id: `x${ESC}[31mRED` }],
  employees: 12000,
  city: null,
  createdAt: '2026-12-01T06:12:56.697Z',
} as unknown as Company;

describe('cells', () => {
  it('escape control characters in scalars, array elements and external ids', () => {
    expect(cell(`a${ESC}[2Jb`)).toBe('a\\u001b[2Jb');
    expect(cell([`t${ESC}x`, 'u'])).toBe('t\\u001bx;u');
    expect(cell(company.externalIds)).toBe('crm:x\\u001b[31mRED');
    expect(cell({ k: `\u0007` })).not.toContain('\u0007');
    expect(plainLine(['a\tb', 'c\nd', 1234567])).toBe('a\\u0009b\tc\\u000ad\t1234567\n');
  });
});

describe('tables', () => {
  it('shrink the widest columns to fit the width, never below their floors', () => {
    expect(fitWidths([4, 40, 10], [2, 6, 6], 40)).toEqual([4, 22, 10]);
    expect(fitWidths([4, 40, 10], [4, 30, 10], 20)).toEqual([4, 30, 10]);
  });

  for (const columns of [80, 120]) {
    it(`fit ${columns} columns: no line longer, no rules, long text cut with …, numbers and times whole`, async () => {
      const ctx = createTestContext({ tty: true, env: { COLUMNS: String(columns), NO_COLOR: '1' } });
      const long = 'companyctl import /very/long/path/to/a/file/that/goes/on/and/on/and/on/companies-2026-12-01.csv --key external:crm';
      await writeTable(ctx, ['seq', 'time', 'actor', 'action', 'command'], [
        [1, '2026-12-01T06:12:56.697Z', 'admin', 'import.completed_with_rejects', long],
        [123456, '2026-12-01T07:00:00.000Z', 'alice', 'company.created', 'companyctl company create --name Acme'],
      ]);
      const lines = ctx.stdout().trimEnd().split('\n');
      expect(lines).toHaveLength(3);
      for (const l of lines) expect([...l].length).toBeLessThanOrEqual(columns);
      expect(lines[0]).toMatch(/^seq\s+time\s+actor\s+action\s+command$/);
      expect(ctx.stdout()).not.toMatch(/[│─┌└]/);
      expect(lines[1]).toContain('…');
      expect(lines[2]).toMatch(/^123456\s+2026-12-01 07:00\s+alice/);
    });
  }

  it('leave out columns with no value in any row', async () => {
    const ctx = createTestContext({ tty: true, env: { NO_COLOR: '1' } });
    await writeTable(ctx, ['id', 'lastError', 'status'], [[1, null, 'done']]);
    expect(ctx.stdout().split('\n')[0]).toMatch(/^id\s+status$/);
  });
});

describe('lists in a pipe', () => {
  it('print a header line, then tab-separated rows with raw numbers', async () => {
    const ctx = createTestContext({ tty: false });
    await writeList(ctx, ['id', 'rows'], [[1, 1234567]]);
    expect(ctx.stdout()).toBe('id\trows\n1\t1234567\n');
  });
});

describe('one record', () => {
  it('on a terminal: the fields that are set, aligned, no boxes; escaped', async () => {
    const ctx = createTestContext({ tty: true, env: { NO_COLOR: '1' } });
    await writeCompany(ctx, company);
    const out = ctx.stdout();
    expect(out).toContain('name         Acme\n');
    expect(out).not.toMatch(/legalName|city/);
    expect(out).not.toContain(ESC);
    expect(out).toContain('crm:x\\u001b[31mRED');
  });

  it('with --fields: every asked-for field, set or not; without a terminal every field', async () => {
    const ctx = createTestContext({ tty: true, env: { NO_COLOR: '1' } });
    await writeCompany(ctx, company, ['name', 'city']);
    expect(ctx.stdout()).toMatch(/^name {2}Acme\ncity\n$/);
    const pipe = createTestContext({ tty: false });
    await writeCompany(pipe, company);
    expect(pipe.stdout()).toContain('legalName\t\n');
  });

  it('records print key and value; null as - on a terminal', async () => {
    const ctx = createTestContext({ tty: true, env: { NO_COLOR: '1' } });
    await writeRecord(ctx, { ok: true, file: null });
    expect(ctx.stdout()).toBe('ok    true\nfile  -\n');
  });
});

describe('colour', () => {
  const base = { io: { stdoutIsTTY: true, stderrIsTTY: true } } as never;
  const level = (env: Record<string, string>, globals = {}) => colourLevel({ ...(base as object), env, globals } as never);
  it('is off with NO_COLOR (any non-empty value), --no-color, TERM=dumb or without a terminal', () => {
    expect(level({})).toBe(1);
    expect(level({ NO_COLOR: '1' })).toBe(0);
    expect(level({ NO_COLOR: 'false' })).toBe(0);
    expect(level({}, { color: false })).toBe(0);
    expect(level({ TERM: 'dumb' })).toBe(0);
    expect(colourLevel({ env: {}, globals: {}, io: { stdoutIsTTY: false } } as never)).toBe(0);
    expect(level({ FORCE_COLOR: '0' })).toBe(0);
  });

  it('a coloured table header on a terminal; none with NO_COLOR', async () => {
    const on = createTestContext({ tty: true, env: {} });
    await writeTable(on, ['id'], [[1]]);
    expect(on.stdout()).toContain(ESC);
    const off = createTestContext({ tty: true, env: { NO_COLOR: '1' } });
    await writeTable(off, ['id'], [[1]]);
    expect(off.stdout()).not.toContain(ESC);
  });
});
