// Flags, dependencies, cancellation and the summary of the import commands.
import type { Context } from '../context.js';
import { CompanyctlError, ExitCode } from '../errors.js';
import { readMappings } from '../services/import/mapping.js';
import { parseConstants, parseDateFormat, parseValueMaps, type TransformSpec } from '../services/import/transform.js';
import { IMPORT_KEYS, type ImportDeps, type ImportKey, type ImportOptions, type ImportSummary, type InputFormat, type MaxErrors } from '../services/import/index.js';
import { parseDuration, parsePositiveInt, parseWholeNumber } from './flags.js';
import { outputFormat, writeJson, writeRecord } from './output.js';
import { withCancellation } from './cancellation.js';

const usage = (flag: string, message: string, hint?: string) => new CompanyctlError('COMPANYCTL_USAGE', `${flag}: ${message}`, { field: flag, hint });

export function parseKey(value: string): ImportKey {
  const m = /^([a-z]+)(?::([a-z0-9][a-z0-9._-]{0,31}))?$/.exec(value.trim().toLowerCase());
  const kind = m?.[1] as ImportKey['kind'] | undefined;
  if (!m || !kind || !(IMPORT_KEYS as readonly string[]).includes(kind) || (m[2] && kind !== 'external')) {
    throw usage('--key', `${JSON.stringify(value)} is not a key`, 'use domain, lei, registration, external or external:<source>');
  }
  return { kind, source: m[2] };
}

export function parseMaxErrors(value: string | undefined): MaxErrors | undefined {
  if (value === undefined) return undefined;
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(value.trim());
  if (pct) {
    const rate = Number(pct[1]) / 100;
    if (rate > 1) throw usage('--max-errors', `${value} is more than 100%`);
    return { rate };
  }
  if (/^\d+$/.test(value.trim())) return { count: Number(value) };
  throw usage('--max-errors', `${JSON.stringify(value)} is not a number of rows or a percentage (e.g. 100 or 2%)`);
}

/** The import command's flags, as commander gives them. */
export interface ImportFlags {
  format?: string;
  encoding?: string;
  map?: string[];
  mapping?: string;
  set?: string[];
  value?: string[];
  dateFormat?: string;
  records?: string;
  key: string;
  maxErrors?: string;
  dryRun?: boolean;
  rejects?: string;
  force?: boolean;
  chunkSize: string;
  maxRecordSize?: string;
  maxGzipRatio?: string;
  wait?: string;
}

export function parseImportFlags(file: string, opts: ImportFlags): ImportOptions {
  parseWholeNumber('--chunk-size', opts.chunkSize, { max: 1_000_000 });
  const maps = readMappings(opts.map ?? [], opts.mapping);
  if (opts.records !== undefined && opts.format !== undefined && opts.format !== 'json') {
    throw usage('--records', `reads a JSON document; it does not go with --format ${opts.format}`);
  }
  const transform: TransformSpec = {
    sources: maps.sources,
    constants: parseConstants(opts.set ?? []),
    values: parseValueMaps(opts.value ?? []),
    dateFormat: parseDateFormat(opts.dateFormat),
    records: opts.records,
    flatten: maps.dotPaths,
  };
  return {
    source: file,
    format: opts.format as InputFormat | undefined,
    encoding: opts.encoding,
    mapping: [...maps.explicit],
    transform,
    key: parseKey(opts.key),
    chunkSize: Number(opts.chunkSize),
    maxErrors: parseMaxErrors(opts.maxErrors),
    dryRun: !!opts.dryRun,
    rejectsFile: opts.rejects,
    force: !!opts.force,
    maxRecordChars: opts.maxRecordSize === undefined ? undefined : parsePositiveInt(opts.maxRecordSize, '--max-record-size')! * (1 << 20),
    maxGzipRatio: parseGzipRatio(opts.maxGzipRatio),
    waitMs: parseWait(opts.wait),
  };
}

/** --wait: a duration (30m, 6h) or 0 (do not wait for other imports). */
export function parseWait(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '0') return 0;
  return parseDuration('--wait', value, { units: ['s', 'm', 'h', 'd'], example: '30m, 6h, or 0' });
}

function parseGzipRatio(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw usage('--max-gzip-ratio', `${JSON.stringify(value)} is not a whole number (0: no limit)`);
  return Number(value);
}

export function parseJobId(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw usage('<job>', `${JSON.stringify(value)} is not a job id`, 'list jobs with "companyctl import list"');
  return Number(value);
}

export function importDeps(ctx: Context): ImportDeps {
  return {
    store: () => ctx.store(),
    cache: ctx.cache(),
    now: () => ctx.now(),
    actor: ctx.actor(),
    stdin: ctx.io.stdin,
    stateDir: ctx.paths.stateDir,
    bulkBytes: bulkBytesFromEnv(ctx.env.COMPANYCTL_IMPORT_BULK_BYTES),
  };
}

/** COMPANYCTL_IMPORT_BULK_BYTES: the smallest input loaded as a bulk load on SQLite (README, Configuration). */
function bulkBytesFromEnv(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `COMPANYCTL_IMPORT_BULK_BYTES must be a whole number of bytes, got ${JSON.stringify(v)}`, {
      field: 'COMPANYCTL_IMPORT_BULK_BYTES',
    });
  }
  return Number(v);
}

/** Ctrl-C or SIGTERM stops reading at once; the chunk in flight commits what it has, and the job stays resumable. */
export const withImportCancellation = <T>(ctx: Context, fn: (signal: AbortSignal) => Promise<T>): Promise<T> =>
  withCancellation(ctx, 'stopping: reading stops now and the chunk in flight commits what it has; the job stays resumable', fn);

export function exitCodeOf(s: ImportSummary): number {
  return s.rejected > 0 ? ExitCode.partial : ExitCode.ok;
}

export async function writeImportSummary(ctx: Context, s: ImportSummary): Promise<void> {
  const format = outputFormat(ctx);
  if (format === 'json') return writeJson(ctx, s);
  // Thousands separators for a person; raw numbers for cut, awk and sort.
  const n = (x: number) => (format === 'table' ? x.toLocaleString('en-US') : x);
  const entries: [string, unknown][] = [
    ['job', s.jobId ?? '(dry run: nothing written)'],
    ['state', s.state],
    ['file', `${s.file} (${s.format}, ${s.encoding}, key ${s.key})`],
    ['rows', n(s.rows)],
    ...(s.state === 'dry-run' ? ([['valid', n(s.valid ?? 0)]] as [string, unknown][]) : []),
    ['inserted', n(s.inserted)],
    ['updated', n(s.updated)],
    ['unchanged', n(s.unchanged)],
    ['rejected', n(s.rejected)],
    ['seconds', s.seconds.toFixed(1)],
    ['rows/s', n(s.rowsPerSecond)],
    ['rejects file', s.rejectsFile ?? ''],
  ];
  if (s.resumedFrom) entries.push(['resumed after row', n(s.resumedFrom)]);
  if (s.unknownColumns.length) entries.push(['unknown columns', s.unknownColumns.join(', ')]);
  await writeRecord(ctx, Object.fromEntries(entries));
}
