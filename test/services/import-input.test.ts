// The CSV/TSV reader of the import (delimitedRecords over papaparse), on real files: line
// numbers for every line ending and for any chunking of the input, malformed quoting (one
// rejected record, the next records read on), the cap on one record's size, and the same
// through runImport on SQLite (rejects file, imported rows).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { CompanyctlError } from '../../src/errors.js';
import { resolveStoreLocation } from '../../src/infra/db/location.js';
import { migrateStore, openStore, type Store } from '../../src/infra/db/store.js';
import { delimitedRecords, MAX_RECORD_CHARS, type InputRecord } from '../../src/services/import/parse.js';
import { decode, openSourceBytes, peekText } from '../../src/services/import/source.js';
import { runImport, type ImportDeps, type ImportOptions } from '../../src/services/import/index.js';
import { ROOT, tempHome } from '../helpers.js';

const FIX = join(ROOT, 'fixtures', 'import');

let home: ReturnType<typeof tempHome>;
beforeAll(() => {
  home = tempHome();
});
afterAll(() => home?.cleanup());

let fileNo = 0;
function file(text: string, ext = 'csv'): string {
  const path = join(home.home, `input-${++fileNo}.${ext}`);
  writeFileSync(path, text);
  return path;
}

/**
 * Every record of a file as the import reads it: bytes from disk (in `chunkBytes` pieces when
 * given, else as the import opens files), decoded, then delimitedRecords. Batches are kept.
 */
async function readBatches(
  path: string,
  opts: { chunkBytes?: number; encoding?: string; delimiter?: ',' | '\t'; maxRecordChars?: number } = {},
): Promise<InputRecord[][]> {
  const bytes = opts.chunkBytes ? (createReadStream(path, { highWaterMark: opts.chunkBytes }) as AsyncIterable<Buffer>) : openSourceBytes(path, process.stdin);
  const decoded = await decode(bytes, { bytes: 0 }, opts.encoding);
  const peeked = await peekText(decoded.text);
  // Tiny chunks would cut the head before its first line end: detect the line ending from the
  // start of the file, as the import does from its first (256 KiB) chunk.
  const head = opts.chunkBytes ? (await peekText((await decode(openSourceBytes(path, process.stdin), { bytes: 0 }, opts.encoding)).text)).head : peeked.head;
  const batches: InputRecord[][] = [];
  for await (const b of delimitedRecords(peeked.text, head, opts.delimiter ?? ',', opts.maxRecordChars)) batches.push(b);
  return batches;
}
const read = async (...args: Parameters<typeof readBatches>) => (await readBatches(...args)).flat();
/** `line: first cell` or `line: ERROR` per record. */
const brief = (records: InputRecord[]) => records.map((r) => `${r.line}: ${r.error ? 'ERROR' : r.cells![0]}`);

describe('delimitedRecords: line numbers', () => {
  const sample = ['Müller Maschinenbau', 'Société Générale Test', 'Globex, Inc.', 'Initech', 'Åkesson & Söner', 'Umbrella "Health" Ltd'];
  const fixtures: [string, { encoding?: string; delimiter?: ',' | '\t' }][] = [
    ['companies.csv', {}],
    ['companies-crlf.csv', {}],
    ['companies-cr.csv', {}],
    ['companies-bom.csv', {}],
    ['companies-utf16le.csv', {}],
    ['companies-utf16be.tsv', { delimiter: '\t' }],
    ['companies-windows1252.csv', { encoding: 'windows-1252' }],
    ['companies-latin1.tsv', { encoding: 'latin1', delimiter: '\t' }],
    ['companies.tsv', { delimiter: '\t' }],
    ['companies.csv.gz', {}],
  ];
  for (const [name, o] of fixtures) {
    it(`reads ${name}: header on line 1, one record a line`, async () => {
      const records = await read(join(FIX, name), o);
      expect(records.map((r) => r.line)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(records[0]!.cells![0]).toBe('Name');
      expect(records.slice(1).map((r) => r.cells![0])).toEqual(sample);
      expect(new Set(records.map((r) => r.cells!.length)).size).toBe(1);
    });
  }

  it('counts the lines of quoted multi-line cells, skips (but counts) blank lines, keeps a row with too many columns', async () => {
    const records = await read(join(FIX, 'bad-rows.csv'));
    expect(brief(records)).toEqual([
      '1: name',
      '2: Good One',
      '3: Bad Country',
      '4: Multi Line',
      '6: Bad Employees',
      '7: ',
      '8: Good Two',
      '9: Good One Again',
      '10: Too',
      '12: No Domain',
      '13: Bad Domain',
      '14: Good Three',
    ]);
    expect(records[3]!.cells![4]).toBe('Hauptstr. 1\nHinterhaus');
    expect(records[8]!.cells).toHaveLength(6);
  });

  const multiLine = (nl: string) =>
    ['name,note', '"A",one', '"B","two', 'lines"', '', '"C","three', '', 'lines, one blank"', 'D,"x""y"', '"E",', '', ''].join(nl);
  for (const [label, nl] of [
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ] as const) {
    it(`${label}: the same lines for every chunk size (a record, a quote pair or a line end cut anywhere)`, async () => {
      const path = file(multiLine(nl));
      const expected = ['1: name', '2: A', '3: B', '6: C', '9: D', '10: E'];
      const whole = await read(path);
      expect(brief(whole)).toEqual(expected);
      expect(whole[2]!.cells![1]).toBe(`two${nl}lines`);
      expect(whole[3]!.cells![1]).toBe(`three${nl}${nl}lines, one blank`);
      expect(whole[4]!.cells![1]).toBe('x"y');
      for (let chunkBytes = 1; chunkBytes <= 12; chunkBytes++) {
        expect(brief(await read(path, { chunkBytes })), `chunks of ${chunkBytes} bytes`).toEqual(expected);
      }
    });
  }

  it('yields a batch a chunk, never an empty one, and reads a last record without a line end', async () => {
    const rows = Array.from({ length: 2000 }, (_, i) => `Company ${i},"c${i}.example",DE`);
    const path = file(['name,domain,country', ...rows].join('\n'));
    const batches = await readBatches(path, { chunkBytes: 4096 });
    expect(batches.length).toBeGreaterThan(10);
    expect(batches.every((b) => b.length > 0)).toBe(true);
    const records = batches.flat();
    expect(records).toHaveLength(2001);
    expect(records.every((r, i) => r.line === i + 1)).toBe(true);
    expect(records[2000]!.cells).toEqual(['Company 1999', 'c1999.example', 'DE']);
  });
});

describe('delimitedRecords: malformed quoting', () => {
  it('rejects the bad record on its line and reads on, with the right lines after it', async () => {
    const csv = [
      'name,domain,country', //                        1
      'Good One,good-one.com,DE', //                   2
      '"Acme "Best" Inc",acme.com,DE', //              3: stray quotes inside a quoted cell
      'Good Two,good-two.com,FR', //                   4
      '"Multi\nLine",multi.com,DE', //                 5-6
      '"Two "Bad" cell\nLines",two-bad.com,DE', //     7-8: a stray quote in a multi-line cell
      '', //                                           9
      'Good Three,good-three.com,GB', //               10
      '',
    ].join('\n');
    const path = file(csv);
    const expected = ['1: name', '2: Good One', '3: ERROR', '4: Good Two', '5: Multi\nLine', '7: ERROR', '10: Good Three'];
    const records = await read(path);
    expect(brief(records)).toEqual(expected);
    expect(records[2]).toEqual({ line: 3, error: 'cannot read this CSV record: a quoted cell has a " that neither ends the cell nor is doubled ("")' });
    expect(records[5]!.error).toBe('cannot read this CSV record: a quoted cell has a " that neither ends the cell nor is doubled ("") (lines 7-8 were read as this one record)');
    for (let chunkBytes = 1; chunkBytes <= 9; chunkBytes++) {
      expect(await read(path, { chunkBytes }), `chunks of ${chunkBytes} bytes`).toEqual(records);
    }
  });

  it('a bad closing quote reads on to the next quote that can end a cell: the error names the lines it took; CRLF and CR alike', async () => {
    for (const nl of ['\n', '\r\n', '\r']) {
      const csv = ['name,domain', '"Bad"x,bad.com', 'Swallowed,swallowed.com', '"Closes" here,"x.com"', 'After,after.com', ''].join(nl);
      const records = await read(file(csv));
      expect(brief(records), JSON.stringify(nl)).toEqual(['1: name', '2: ERROR', '5: After']);
      expect(records[1]!.error).toBe('cannot read this CSV record: a quoted cell has a " that neither ends the cell nor is doubled ("") (lines 2-4 were read as this one record)');
    }
  });

  it('a quote never closed: the rest of the file is one bad record (under the size cap)', async () => {
    const records = await read(file('name,domain\nGood,good.com\n"Open,open.com\nA,a.com\nB,b.com\n'));
    expect(records).toEqual([
      { line: 1, cells: ['name', 'domain'] },
      { line: 2, cells: ['Good', 'good.com'] },
      { line: 3, error: 'cannot read this CSV record: a quoted cell is never closed (lines 3-5 were read as this one record)' },
    ]);
  });

  it('TSV: the same rules', async () => {
    const records = await read(file('name\tdomain\n"A "B" C"\tabc.com\nD\td.com\n', 'tsv'), { delimiter: '\t' });
    expect(brief(records)).toEqual(['1: name', '2: ERROR', '3: D']);
  });
});

describe('delimitedRecords: the cap on one record', () => {
  it(`stops with COMPANYCTL_INVALID_INPUT naming the record's first line when an open quote runs past ${MAX_RECORD_CHARS} characters`, async () => {
    const filler = Array.from({ length: 40_000 }, (_, i) => `Company ${i},c${i}.example,DE`).join('\n'); // ~1.1 MB, no quotes
    const path = file(`name,domain,country\nGood,good.com,DE\n\n"Open,open.com,DE\n${filler}\n`);
    const seen: InputRecord[] = [];
    const e = await (async () => {
      const decoded = await decode(openSourceBytes(path, process.stdin), { bytes: 0 }, undefined);
      const { head, text } = await peekText(decoded.text);
      for await (const b of delimitedRecords(text, head, ',')) seen.push(...b);
    })().then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(CompanyctlError);
    expect((e as CompanyctlError).code).toBe('COMPANYCTL_INVALID_INPUT');
    expect((e as CompanyctlError).message).toBe('line 4: the record that starts here is longer than 1 MiB; is a quoted cell missing its closing "?');
    // The error names the flag that raises the limit (issue 16).
    expect((e as CompanyctlError).field).toBe('--max-record-size');
    expect((e as CompanyctlError).hint).toContain('--max-record-size');
    expect(brief(seen)).toEqual(['1: name', '2: Good']);
  });

  it('holds a long record that does end (a cell of many lines) and counts its lines', async () => {
    const cell = Array.from({ length: 500 }, (_, i) => `note line ${i}`).join('\n');
    const path = file(`name,note\n"Long","${cell}"\nNext,x\n`);
    const records = await read(path, { chunkBytes: 1000, maxRecordChars: 20_000 });
    expect(brief(records)).toEqual(['1: name', '2: Long', '502: Next']);
    expect(records[1]!.cells![1]).toBe(cell);
    await expect(read(path, { chunkBytes: 1000, maxRecordChars: 4_000 })).rejects.toThrow(/^line 2: the record that starts here is longer than 4000 characters/);
  });
});

describe('malformed CSV through runImport (SQLite)', () => {
  let store: Store;
  beforeAll(async () => {
    const loc = resolveStoreLocation(undefined, join(home.home, 'store.db'));
    await migrateStore(loc);
    store = await openStore(loc);
  });
  afterAll(async () => store?.close());
  const deps = (): ImportDeps => {
    const stdin = new PassThrough();
    stdin.end();
    return { store: async () => store, now: () => new Date(), actor: 'tester', stdin, stateDir: join(home.home, 'state'), worker: false };
  };
  const opts = (source: string): ImportOptions => ({ source, mapping: [], key: { kind: 'domain' }, chunkSize: 2 });

  it('rejects the bad records by line and imports the others', async () => {
    const path = file(
      [
        'name,domain,country',
        'Good One,good-one.com,DE',
        '"Acme "Best" Inc",acme.com,DE',
        '"Multi\r\nLine",multi.com,DE',
        '"Bad"x,bad.com,DE',
        'Swallowed,swallowed.com,DE',
        '"Ends" here,"ends.com",DE',
        '',
        'Good Two,good-two.com,FR',
        '',
      ].join('\r\n'),
    );
    const s = await runImport(deps(), opts(path));
    expect(s).toMatchObject({ state: 'completed_with_rejects', inserted: 3, rejected: 2 });
    const domains = (await store.read.all<{ domain: string }>('select domain from company order by domain')).map((r) => r.domain);
    expect(domains).toEqual(['good-one.com', 'good-two.com', 'multi.com']);
    const rejects = readFileSync(s.rejectsFile!, 'utf8').trim().split(/\r\n/).slice(1);
    expect(rejects.map((l) => l.split(',').slice(0, 2).join(','))).toEqual(['3,record', '6,record']);
    expect(rejects[1]).toContain('lines 6-8 were read as this one record');
  });

  it('fails the import on a record past the size cap, naming its line', async () => {
    const filler = Array.from({ length: 40_000 }, (_, i) => `Company ${i},c${i}.example,DE`).join('\n');
    const e = await runImport(deps(), opts(file(`name,domain,country\n"Open,open.com,DE\n${filler}\n`))).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(CompanyctlError);
    expect((e as CompanyctlError).message).toContain('line 2: the record that starts here is longer than 1 MiB');
  });
});
