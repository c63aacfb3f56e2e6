// The one output layer: picks JSON, NDJSON, a human table (TTY) or stable tab-separated
// lines (no TTY) and writes data to stdout only. Every cell a terminal shows is escaped here.
import type { Context } from '../context.js';
import { ALL_FIELDS, isCompanyField, type Company, type CompanyField } from '../domain/company.js';
import { CompanyctlError } from '../errors.js';
import { colours, terminalWidth } from './colour.js';
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

/** escape.ts's escapeControl for one cell: newlines and tabs too, so a cell stays one cell. */
const escapeCell = (s: string) => escapeControl(s, { oneLine: true }).replace(/\t/g, '\\u0009');

/** One value as text: arrays joined with ';', external ids as source:id, everything escaped. */
export function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' && x ? `${cell(x.source)}:${cell(x.id)}` : cell(x))).join(';');
  if (typeof v === 'object') return escapeCell(JSON.stringify(v));
  return escapeCell(String(v));
}

/** Stable, tab-separated; control characters (tabs and newlines too) escaped. Numbers stay raw. */
export function plainLine(values: unknown[]): string {
  return `${values.map((v) => cell(v)).join('\t')}\n`;
}

const GAP = 2;

/** Column widths that fit `width`: the widest columns give way first, none below its floor. */
export function fitWidths(natural: number[], floors: number[], width: number): number[] {
  const w = [...natural];
  let total = w.reduce((a, b) => a + b, 0) + GAP * Math.max(0, w.length - 1);
  while (total > width) {
    let widest = -1;
    for (let i = 0; i < w.length; i++) if (w[i]! > floors[i]! && (widest < 0 || w[i]! > w[widest]!)) widest = i;
    if (widest < 0) break; // every column at its floor: let the line run long
    w[widest]!--;
    total--;
  }
  return w;
}

function truncate(s: string, width: number): string {
  const chars = [...s];
  return chars.length <= width ? s : `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
}

const visibleLength = (s: string) => [...s].length;

const ISO_TIME = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?Z$/;

/** A cell for a person: ISO times as "2026-12-01 06:12" (UTC); --json and pipes keep them whole. */
function humanCell(v: unknown): string {
  const t = typeof v === 'string' ? ISO_TIME.exec(v) : null;
  return t ? `${t[1]} ${t[2]}` : cell(v);
}

/**
 * A table as gh prints one: a bold header, columns two spaces apart, no rules, columns with no
 * value in any row left out; it fits the terminal by shortening the widest cells with "…".
 */
export async function writeTable(ctx: Context, header: string[], rows: unknown[][]): Promise<void> {
  const c = await colours(ctx);
  const all = rows.map((r) => header.map((_, i) => humanCell(r[i])));
  const keep = header.map((_, i) => rows.length === 0 || all.some((r) => r[i] !== ''));
  const head = header.filter((_, i) => keep[i]);
  const text = all.map((r) => r.filter((_, i) => keep[i]));
  const natural = head.map((h, i) => Math.max(visibleLength(h), ...text.map((r) => visibleLength(r[i]!))));
  // Numbers and times are never cut; text columns give way down to a short floor.
  const whole = head.map((_, i) => text.every((r) => /^(-?\d+(\.\d+)?|\d{4}-\d{2}-\d{2} \d{2}:\d{2})?$/.test(r[i]!)));
  const floors = head.map((h, i) => (whole[i] ? natural[i]! : Math.min(natural[i]!, Math.max(6, Math.min(visibleLength(h), 12)))));
  const widths = fitWidths(natural, floors, terminalWidth(ctx));
  const line = (cells: string[], style: (s: string) => string = (s) => s) =>
    cells
      .map((v, i) => {
        const t = truncate(v, widths[i]!);
        return i === cells.length - 1 ? style(t) : style(t) + ' '.repeat(widths[i]! - visibleLength(t) + GAP);
      })
      .join('')
      .trimEnd();
  const out = [line(head, c.bold), ...text.map((r) => line(r))];
  ctx.io.stdout.write(`${out.join('\n')}\n`);
}

/** Rows with a header: a fitted table on a terminal, tab-separated lines under a header line otherwise. */
export async function writeList(ctx: Context, header: string[], rows: unknown[][]): Promise<void> {
  if (outputFormat(ctx) === 'table') return writeTable(ctx, header, rows);
  ctx.io.stdout.write(plainLine(header));
  for (const r of rows) ctx.io.stdout.write(plainLine(r));
}

/** `key  value` lines, keys dimmed and aligned; long values wrap under their column. */
async function writeKeyValues(ctx: Context, entries: [string, unknown][]): Promise<void> {
  const c = await colours(ctx);
  const keyWidth = Math.max(0, ...entries.map(([k]) => visibleLength(k)));
  const room = Math.max(20, terminalWidth(ctx) - keyWidth - GAP);
  const lines: string[] = [];
  for (const [k, v] of entries) {
    const value = cell(v);
    const parts = value.length === 0 ? [''] : (value.match(new RegExp(`.{1,${room}}`, 'gu')) ?? ['']);
    const pad = ' '.repeat(keyWidth - visibleLength(k) + GAP);
    parts.forEach((p, i) => lines.push(`${i === 0 ? c.dim(k) + pad : ' '.repeat(keyWidth + GAP)}${p}`.trimEnd()));
  }
  ctx.io.stdout.write(`${lines.join('\n')}\n`);
}

/** One record: a JSON document, aligned key/value lines (TTY) or `key<TAB>value` lines. */
export async function writeRecord(ctx: Context, doc: object, _header?: [string, string]): Promise<void> {
  const format = outputFormat(ctx);
  if (format === 'json') return writeJson(ctx, doc);
  const entries = Object.entries(doc) as [string, unknown][];
  if (format === 'table') return writeKeyValues(ctx, entries.map(([k, v]) => [k, v ?? '-']));
  for (const e of entries) ctx.io.stdout.write(plainLine(e));
}

/** Several records: a JSON array, a table (TTY) or a header line and tab-separated lines of `columns`. */
export async function writeRecords<T extends object>(ctx: Context, items: T[], columns: (keyof T & string)[]): Promise<void> {
  const format = outputFormat(ctx);
  if (format === 'json') return writeJson(ctx, items);
  return writeList(ctx, columns, items.map((it) => columns.map((c) => it[c])));
}

const isBlank = (v: unknown) => v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0);

/**
 * One company: a JSON document; on a terminal the fields that are set (every asked-for field with
 * --fields); without one `field<TAB>value` lines of every field (a company's blanks are data).
 */
export async function writeCompany(ctx: Context, c: Company, fields?: CompanyField[]): Promise<void> {
  const shown = pick(c, fields);
  const format = outputFormat(ctx);
  if (format === 'json') return writeJson(ctx, shown);
  const entries = Object.entries(shown) as [string, unknown][];
  if (format === 'table') return writeKeyValues(ctx, fields ? entries : entries.filter(([, v]) => !isBlank(v)));
  for (const e of entries) ctx.io.stdout.write(plainLine(e));
}
