// companyctl company create: from flags, a JSON document (--from-json -), or prompts on a TTY.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';
import { addCompanyFlags } from '../../src/io/company-input.js';

export interface CreateOptions {
  [flag: string]: unknown;
}

export function register(parent: Command, run: Runner): void {
  const cmd = parent
    .command('create')
    .description('create a company')
    .addHelpText('after', '\nExamples:\n  companyctl company create --name "Acme GmbH" --domain acme.de --country DE\n  echo \'{"name":"Acme","lei":"529900T8BM49AURSDO55"}\' | companyctl company create --from-json - --json');
  addCompanyFlags(cmd).action((opts: CreateOptions, c: Command) => run(c, (ctx) => createRun(ctx, opts)));
}

export async function createRun(ctx: Context, opts: CreateOptions): Promise<number> {
  const { readCompanyFields, promptMissingRequired } = await import('../../src/io/company-input.js');
  const { validateNewCompany } = await import('../../src/domain/validate.js');
  const { createCompany } = await import('../../src/services/company.js');
  const { companyDeps } = await import('../../src/context.js');
  const { writeCompany } = await import('../../src/io/output.js');
  const raw = await readCompanyFields(ctx, opts);
  await promptMissingRequired(ctx, raw);
  const input = validateNewCompany(raw, ctx.now());
  const { company } = await createCompany(companyDeps(ctx), input);
  ctx.notice(`created company ${company.id} (${company.name})`);
  await writeCompany(ctx, company);
  return 0;
}
