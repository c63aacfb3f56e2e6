// The one output layer: picks JSON, NDJSON, a human table (TTY) or stable tab-separated
// lines (no TTY) and writes data to stdout only.
import type { Context } from '../context.js';
import { ALL_FIELDS, isCompanyField, type Company, type CompanyField } from '../domain/company.js';
import { CompanyctlError } from '../errors.js';
import { escapeControl } from './escape.js';

export type Format = 'json' | 'ndjson' | 'table' | 'plain';

export function outputFormat(ctx: Context, opts: { ndjson?: boolean } = {}): Format {
  if (ctx.globals.json) return 'json';
  if (opts.ndjson) return 'ndjson';
  return ctx.io.stdoutIsTTY ? 'table' : 'plain';
}

export function parseFields(spec: string | undefined): CompanyField[] | undefined {
  if (spec === undefined) return undefined;
  const fields = spec.split(',').map((f) => f.trim()).filter(Boolean);
  const bad = fields.filter((f) => !isCompanyField(f));
  if (bad.length > 0 || fields.length === 0) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `--fields: unknown field ${bad.map((b) => JSON.stringify(b)).join(', ') || '(none given)'}`, {
      field: '--fields',
      hint: `fields: ${ALL_FIELDS.join(', ')}`,
    });
  }
  return fields as CompanyField[];
}

export function pick(c: Company, fields: readonly CompanyField[] | undefined): Partial<Company> {
  if (!fields) return c;
  const out: Record<string, unknown> = {};
  for (const f of fields) out[f] = c[f];
  return out as Partial<Company>;
}

export function writeJson(ctx: Context, value: unknown): void {
  ctx.io.stdout.write(`${JSON.stringify(value, null, ctx.io.stdoutIsTTY ? 2 : undefined)}\n`);
}

export function writeNdjson(ctx: Context, value: unknown): void {
  ctx.io.stdout.write(`${JSON.stringify(value)}\n`);
}

export function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' && x ? `${x.source}:${x.id}` : String(x))).join(';');
  // Escape sequences in data must not drive the terminal.
  return escapeControl(String(v));
}

/** Stable, tab-separated; tabs and newlines inside values become spaces. */
export function plainLine(values: unknown[]): string {
  return `${values.map((v) => cell(v).replace(/[\t\r\n]+/g, ' ')).join('\t')}\n`;
}

export async function writeTable(ctx: Context, header: string[], rows: unknown[][]): Promise<void> {
  const { default: Table } = await import('cli-table3');
  const { default: chalk } = await import('chalk');
  const table = new Table({
    head: header.map((h) => chalk.bold(h)),
    style: { head: [], border: [] },
    wordWrap: true,
    wrapOnWordBoundary: false,
  });
  for (const r of rows) table.push(r.map((v) => cell(v)));
  ctx.io.stdout.write(`${table.toString()}\n`);
}

/** One record: a JSON document, a key/value table (TTY) or `key<TAB>value` lines. */
export async function writeRecord(ctx: Context, doc: object, header: [string, string] = ['', '']): Promise<void> {
  const format = outputFormat(ctx);
  if (format === 'json') return writeJson(ctx, doc);
  const entries = Object.entries(doc).map(([k, v]) => [k, v ?? (format === 'table' ? '-' : '')]);
  if (format === 'table') return writeTable(ctx, header, entries);
  for (const e of entries) ctx.io.stdout.write(plainLine(e));
}

/** Several records: a JSON array, a table (TTY) or tab-separated lines of `columns`. */
export async function writeRecords<T extends object>(ctx: Context, items: T[], columns: (keyof T & string)[]): Promise<void> {
  const format = outputFormat(ctx);
  if (format === 'json') return writeJson(ctx, items);
  const rows = items.map((it) => columns.map((c) => it[c]));
  if (format === 'table') return writeTable(ctx, columns, rows);
  for (const r of rows) ctx.io.stdout.write(plainLine(r));
}

/** One company: JSON document, key/value table (TTY) or `field<TAB>value` lines. */
export async function writeCompany(ctx: Context, c: Company, fields?: CompanyField[]): Promise<void> {
  const shown = pick(c, fields);
  if (outputFormat(ctx) === 'json') return writeJson(ctx, shown);
  // Empty fields print as '' (not '-') in both forms: a company's blanks are data.
  const entries = Object.entries(shown);
  if (outputFormat(ctx) === 'table') return writeTable(ctx, ['field', 'value'], entries);
  for (const e of entries) ctx.io.stdout.write(plainLine(e));
}
