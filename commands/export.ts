// companyctl export: any `company list` selection as CSV, NDJSON or a JSON array, to a file or
// stdout, streamed in constant memory; CSV cells are guarded against formula injection.
import { Option, type Command } from 'commander';
import type { Runner } from '../src/cli.js';
import type { Context } from '../src/context.js';
import { addFilterFlags, type FilterFlags } from '../src/io/filter-flags.js';

export interface ExportOptions extends FilterFlags {
  output?: string;
  format?: string;
  fields?: string;
  deleted?: boolean;
  includeDeleted?: boolean;
  sort: string;
  limit?: string;
  force?: boolean;
}

export function register(program: Command, run: Runner): void {
  addFilterFlags(
    program
      .command('export')
    .description('export companies as CSV, NDJSON or JSON (streamed; re-importable with "companyctl import")')
    .option('-o, --output <file>', 'write to this new file (0600) instead of stdout')
    .option('--force', 'replace --output if it exists')
    .addOption(new Option('--format <format>', 'csv, ndjson or json (default: from --output\'s name, else csv)').choices(['csv', 'ndjson', 'json']))
    .option('--fields <a,b,...>', 'only these fields (default: id and every company field)'),
  )
    .option('--deleted', 'only soft-deleted companies')
    .option('--include-deleted', 'live and soft-deleted companies')
    .option('--sort <field>', 'id, name, createdAt or updatedAt; prefix - for descending', 'id')
    .option('--limit <n>', 'at most n companies (default: all)')
    .addHelpText(
      'after',
      '\nExamples:\n  companyctl export -o companies.csv\n  companyctl export -o companies.csv --force        # replace last night\'s file\n  companyctl export --country DE --tag supplier --format ndjson | gzip > de-suppliers.ndjson.gz\n  companyctl export --fields name,domain,lei --format json -o keys.json',
    )
    .action((opts: ExportOptions, c: Command) => run(c, (ctx) => exportRun(ctx, opts)));
}

export async function exportRun(ctx: Context, opts: ExportOptions): Promise<number> {
  const { parseListOptions } = await import('../src/io/list-options.js');
  const { parseFields } = await import('../src/io/output.js');
  const { INPUT_FIELDS } = await import('../src/domain/company.js');
  const { exportCompanies } = await import('../src/services/export.js');
  const { companyDeps } = await import('../src/context.js');
  const list = parseListOptions({ ...opts, all: opts.limit === undefined }, ctx.now(), true);
  const fields = parseFields(opts.fields) ?? ['id', ...INPUT_FIELDS];
  const toFile = opts.output !== undefined && opts.output !== '-';
  const byName = toFile ? (/\.(ndjson|jsonl)$/i.test(opts.output!) ? 'ndjson' : /\.json$/i.test(opts.output!) ? 'json' : 'csv') : 'csv';
  const format = (opts.format ?? byName) as 'csv' | 'ndjson' | 'json';
  if (!toFile) {
    const n = await exportCompanies(companyDeps(ctx), list, fields, format, ctx.io.stdout);
    ctx.notice(`exported ${n} companies`);
    return 0;
  }
  const { createWriteStream, rmSync } = await import('node:fs');
  const { finished } = await import('node:stream/promises');
  const files = await import('../src/infra/files.js');
  const { unwritable } = await import('../src/infra/user-file.js');
  const { CompanyctlError } = await import('../src/errors.js');
  const target = opts.output!;
  const kind = files.outputKind(target);
  if (kind === 'other') {
    throw new CompanyctlError('COMPANYCTL_FILE_EXISTS', `--output: ${target} is a folder or a device, not a file`, { field: '--output', hint: 'name a file, or - for stdout' });
  }
  if (kind === 'file' && !opts.force) {
    throw new CompanyctlError('COMPANYCTL_FILE_EXISTS', `--output: ${target} already exists`, { field: '--output', hint: 'choose another name, or pass --force to replace it' });
  }
  // A pipe or terminal (-o /dev/stdout, a named pipe) is written as it is: nothing to replace.
  // A file is written beside the target under an unpredictable name and moved in at the end,
  // so a failed export never leaves half a file and a planted symlink is never followed.
  let tmp: { path: string; fd: number } | undefined;
  try {
    tmp = kind === 'stream' ? undefined : files.createTempBeside(target);
  } catch (e) {
    throw unwritable(target, e, '--output');
  }
  const out = tmp ? createWriteStream(tmp.path, { fd: tmp.fd }) : createWriteStream(target, { flags: 'a' });
  let failure: unknown;
  // Without a listener a failed write (a full disk) is an unhandled 'error' event: a crash.
  out.on('error', (e) => (failure ??= e));
  try {
    const n = await exportCompanies(companyDeps(ctx), list, fields, format, out);
    out.end();
    await finished(out);
    if (failure) throw failure;
    if (tmp) files.publishTemp(tmp.path, target, { force: opts.force, flag: '--output' });
    ctx.notice(`exported ${n} companies to ${target}`);
    if (ctx.globals.json) ctx.io.stdout.write(`${JSON.stringify({ file: target, format, companies: n })}
`);
  } catch (e) {
    out.destroy();
    if (tmp) rmSync(tmp.path, { force: true });
    throw unwritable(target, failure ?? e, '--output');
  }
  return 0;
}
