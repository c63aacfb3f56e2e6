// companyctl import <file>: load companies from CSV, TSV, NDJSON or a JSON array (a file, `-`
// for stdin, .gz too), upserting on a natural key; resumable, idempotent, honest exit codes.
import { Option, type Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';
import type { ImportFlags } from '../../src/io/import-cli.js';
import { FORMAT_NAMES } from '../../src/services/import/formats.js';

export interface ImportCommandOptions extends ImportFlags {
  queue?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function register(program: Command, run: Runner): Command {
  return program
    .command('import')
    .description('import companies from a CSV, TSV, NDJSON or JSON file (or - for stdin); see also import resume|list|show')
    .argument('[file]', 'the input file (.gz allowed), a folder of *.json files, or - for stdin')
    .addOption(new Option('--format <format>', 'input format (default: from the file name, else sniffed)').choices(FORMAT_NAMES))
    .option('--encoding <encoding>', 'text encoding when there is no BOM: auto (detect it), or a name (default utf-8; e.g. windows-1252, macintosh)')
    .option(
      '--map <column=target>',
      'map a column (or JSON dot path) to a field; "column=external:<source>" for bare ids, "{A}-{B}=target" to join columns, "column=-" to ignore (repeatable)',
      collect,
    )
    .option('--mapping <file>', 'a JSON file {"column": "field"} of column mappings')
    .option('--set <field=value>', 'a value for every row whose own is empty or absent (repeatable)', collect)
    .option('--value <field:from=to>', 'read the word "from" in a field as "to", e.g. "status:operating=active" (repeatable)', collect)
    .option('--date-format <layout>', 'the layout of incorporationDate in the input: DD/MM/YYYY, MM/DD/YYYY or YYYYMMDD (ISO dates always read)')
    .option('--records <path>', 'JSON: the key (dot path) holding the records, e.g. data for a JSON:API document')
    .option('--key <key>', 'natural key to upsert on: domain, lei, registration, external or external:<source>', 'domain')
    .option('--max-errors <n|pct%>', 'stop when more than n rows (or pct% of rows) are rejected')
    .option('--dry-run', 'validate the whole file; write nothing')
    .option('--rejects <file>', 'where rejected rows go, a new file (default: <state dir>/imports/job-<id>-rejects.csv)')
    .option('--force', 'replace an existing --rejects file')
    .option('--chunk-size <n>', 'rows per transaction (and per checkpoint)', '100000')
    .option('--max-record-size <MiB>', 'the longest record (CSV row, NDJSON line, JSON element) read, in MiB (default 1)')
    .option('--max-gzip-ratio <n>', 'refuse gzip input that expands more than n times its size (default 100; 0: no limit)')
    .option('--wait <duration>', 'SQLite: how long to wait for another import into the same store (default 1h; 0: do not wait)')
    .option('--queue', 'check the input up front, stage it in the store and return at once with the job id; a worker runs it')
    .addHelpText(
      'after',
      `
Exit codes: 0 every row imported, 3 some rows rejected (see the rejects file), 1 failed.
A killed or failed import resumes from its last committed chunk: run the same command again,
or "companyctl import resume <job>".

Examples:
  companyctl import companies.csv
  companyctl import crm-export.tsv.gz --key external:crm --map "Firma=name" --map "Notes=-"
  zcat nightly.ndjson.gz | companyctl import - --format ndjson --max-errors 1% --json
  companyctl import legacy.csv --encoding windows-1252 --dry-run
  companyctl import sec.csv --key external:sec --map "CIK=external:sec" --set registrationCountry=US
  companyctl import f500.csv --key external:f500 --map "{Year}-{Rank}=external:f500" --date-format DD/MM/YYYY
  companyctl import gleif.json --records data --map attributes.entity.legalName.name=name
  companyctl import exports/ --value "status:operating=active" --dry-run --rejects rejects.ndjson
  companyctl import nightly.csv.gz --queue --json && companyctl import wait <job> --timeout 30m`,
    )
    .action((file: string | undefined, opts: ImportCommandOptions, c: Command) => run(c, (ctx) => importRun(ctx, file, opts)));
}

export async function importRun(ctx: Context, file: string | undefined, opts: ImportCommandOptions): Promise<number> {
  const { CompanyctlError } = await import('../../src/errors.js');
  if (file === undefined) {
    throw new CompanyctlError('COMPANYCTL_USAGE', 'missing the file to import (or - for stdin)', {
      field: 'file',
      hint: 'companyctl import companies.csv; see also "companyctl import list" and "companyctl import resume <job>"',
    });
  }
  const { parseImportFlags, importDeps, withImportCancellation, writeImportSummary, exitCodeOf } = await import('../../src/io/import-cli.js');
  const options = parseImportFlags(file, opts);
  // Every flag is checked before a job row exists: a typo leaves no failed job behind.
  await (await import('../../src/services/import/source.js')).checkEncoding(options.encoding);
  if (opts.queue) return (await import('../../src/io/worker-cli.js')).queueImportRun(ctx, options);
  const { runImport } = await import('../../src/services/import/index.js');
  const { importProgress } = await import('../../src/io/progress.js');
  const progress = await importProgress(ctx);
  const summary = await withImportCancellation(ctx, (signal) => runImport(importDeps(ctx), options, progress, signal));
  await writeImportSummary(ctx, summary);
  return exitCodeOf(summary);
}
