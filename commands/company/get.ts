// companyctl company get <ref>: by id, domain, LEI or registration key; cache first.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface GetOptions {
  fresh?: boolean;
  fields?: string;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('get')
    .description('show one company (from the file cache when it can)')
    .argument('<ref>', 'id (42), domain (acme.de), LEI, or registration key (DE:HRB 12345)')
    .option('--fresh', 'read the store, not the cache')
    .option('--fields <a,b,...>', 'only these fields')
    .addHelpText('after', '\nExamples:\n  companyctl company get 42\n  companyctl company get acme.de --json\n  companyctl company get "DE:HRB 12345" --fields id,name,version')
    .action((ref: string, opts: GetOptions, c: Command) => run(c, (ctx) => getRun(ctx, ref, opts)));
}

export async function getRun(ctx: Context, ref: string, opts: GetOptions): Promise<number> {
  const { resolveRef } = await import('../../src/io/company-ref.js');
  const { parseFields, writeCompany } = await import('../../src/io/output.js');
  const fields = parseFields(opts.fields);
  const key = resolveRef(ref);
  const { getCompany } = await import('../../src/services/company.js');
  const { companyDeps } = await import('../../src/context.js');
  const { company, cached } = await getCompany(companyDeps(ctx), key, { fresh: opts.fresh });
  if (ctx.globals.verbose) ctx.notice(cached ? 'from the file cache' : 'from the store');
  await writeCompany(ctx, company, fields);
  return 0;
}
