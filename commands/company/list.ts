// companyctl company list: filters, sort, limit + cursor paging; table, --json, --ndjson.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';
import { addFilterFlags, type FilterFlags } from '../../src/io/filter-flags.js';

export interface ListCommandOptions extends FilterFlags {
  deleted?: boolean;
  includeDeleted?: boolean;
  sort?: string;
  limit?: string;
  all?: boolean;
  cursor?: string;
  fields?: string;
  ndjson?: boolean;
}

export function register(parent: Command, run: Runner): void {
  addFilterFlags(parent.command('list').description('list companies'))
    .option('--deleted', 'only soft-deleted companies')
    .option('--include-deleted', 'live and soft-deleted companies')
    .option('--sort <field>', 'id, name, createdAt or updatedAt; prefix - for descending (default: id, or the cursor\'s)')
    .option('--limit <n>', 'at most n companies (default 50; --ndjson default: all)')
    .option('--all', 'every matching company')
    .option('--cursor <cursor>', 'continue after the page that printed this cursor')
    .option('--fields <a,b,...>', 'only these fields')
    .option('--ndjson', 'one JSON object a line, streamed')
    .addHelpText(
      'after',
      '\nExamples:\n  companyctl company list --country DE --tag supplier\n  companyctl company list --sort -updatedAt --limit 20 --json\n  companyctl company list --ndjson --fields id,domain | jq -r .domain',
    )
    .action((opts: ListCommandOptions, c: Command) => run(c, (ctx) => listRun(ctx, opts)));
}

export async function listRun(ctx: Context, opts: ListCommandOptions): Promise<number> {
  const { parseListOptions } = await import('../../src/io/list-options.js');
  const { outputFormat, parseFields, pick, writeJson, writeList, writeNdjson } = await import('../../src/io/output.js');
  const { DEFAULT_LIST_FIELDS } = await import('../../src/domain/company.js');
  const format = outputFormat(ctx, { ndjson: opts.ndjson });
  const fields = parseFields(opts.fields);
  const list = parseListOptions(opts, ctx.now(), format === 'ndjson');
  const { listCompanies } = await import('../../src/services/company.js');
  const { companyDeps } = await import('../../src/context.js');
  const companies = listCompanies(companyDeps(ctx), list);

  if (format === 'ndjson') {
    let r = await companies.next();
    for (; !r.done; r = await companies.next()) writeNdjson(ctx, pick(r.value, fields));
    if (r.value) ctx.notice(`more: --cursor ${r.value}`);
    return 0;
  }
  const items = [];
  let r = await companies.next();
  for (; !r.done; r = await companies.next()) items.push(r.value);
  const nextCursor = r.value;
  if (format === 'json') {
    writeJson(ctx, { items: items.map((c) => pick(c, fields)), nextCursor });
    return 0;
  }
  const shown = fields ?? DEFAULT_LIST_FIELDS;
  if (format === 'table' && items.length === 0) ctx.notice('no companies match');
  else await writeList(ctx, shown, items.map((c) => shown.map((f) => c[f])));
  if (nextCursor) ctx.notice(`more: companyctl company list ... --cursor ${nextCursor}`);
  return 0;
}
