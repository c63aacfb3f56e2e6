// Export (DESIGN.md flow 6): any `company list` selection streamed out as CSV, NDJSON or a JSON
// array, page by page (keyset paging), so memory stays flat whatever the store's size. CSV
// cells that a spreadsheet would run as a formula (= + - @, tab, CR first) get a leading
// apostrophe; the importer takes exactly that apostrophe off again, so an export re-imports
// to the same companies.
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Company, CompanyField } from '../domain/company.js';
import { joinListCell } from '../domain/list-cell.js';
import { listCompanies, type CompanyDeps, type ListOptions } from './company.js';

export const EXPORT_FORMATS = ['csv', 'ndjson', 'json'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** A leading = + - @ tab or CR (after any apostrophes) gets one more apostrophe. */
export function guardFormula(s: string): string {
  return /^'*[=+\-@\t\r]/.test(s) ? `'${s}` : s;
}

export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return joinListCell(v.map((x) => (typeof x === 'object' && x ? `${x.source}:${x.id}` : String(x))));
  return guardFormula(String(v));
}

/** Write with back-pressure; a stream that already failed (a full disk) throws, never waits forever. */
async function write(out: NodeJS.WritableStream, s: string): Promise<void> {
  const w = out as Writable;
  if (w.errored) throw w.errored;
  if (out.write(s)) return;
  if (w.errored || w.destroyed) throw w.errored ?? new Error('the output was closed');
  const ac = new AbortController();
  await Promise.race([
    once(w, 'drain', { signal: ac.signal }),
    once(w, 'close', { signal: ac.signal }).then(() => {
      throw w.errored ?? new Error('the output was closed');
    }),
  ]).finally(() => ac.abort());
}

/** Stream the selection to `out`; returns the number of companies written. */
export async function exportCompanies(
  deps: CompanyDeps,
  list: ListOptions,
  fields: readonly CompanyField[],
  format: ExportFormat,
  out: NodeJS.WritableStream,
): Promise<number> {
  const pick = (c: Company) => Object.fromEntries(fields.map((f) => [f, c[f]]));
  let count = 0;
  let stringify: ((rows: unknown[][]) => string) | undefined;
  if (format === 'csv') {
    const { stringify: s } = await import('csv-stringify/sync');
    stringify = (rows) => s(rows, { record_delimiter: 'unix' });
    await write(out, stringify([fields as unknown as string[]]));
  } else if (format === 'json') {
    await write(out, '[');
  }
  let batch: string[] = [];
  const flush = async () => {
    if (batch.length) await write(out, batch.join(''));
    batch = [];
  };
  for await (const c of listCompanies(deps, list)) {
    if (format === 'csv') batch.push(stringify!([fields.map((f) => csvCell(c[f]))]));
    else if (format === 'ndjson') batch.push(`${JSON.stringify(pick(c))}\n`);
    else batch.push(`${count === 0 ? '\n' : ',\n'}${JSON.stringify(pick(c))}`);
    count++;
    if (batch.length >= 500) await flush();
  }
  await flush();
  if (format === 'json') await write(out, count === 0 ? ']\n' : '\n]\n');
  return count;
}
