// companyctl company update <ref>: change fields; --if-version N for optimistic concurrency.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';
import { addCompanyFlags } from '../../src/io/company-input.js';

export interface UpdateOptions {
  ifVersion?: string;
  [flag: string]: unknown;
}

export function register(parent: Command, run: Runner): void {
  const cmd = parent
    .command('update')
    .description('change a company (an empty value, or null in JSON, clears a field)')
    .argument('<ref>', 'id, domain, LEI or registration key')
    .option('--if-version <n>', 'fail unless the company is still at this version')
    .addHelpText('after', '\nExamples:\n  companyctl company update 42 --employees 120 --if-version 3\n  companyctl company update acme.de --legal-name ""\n  echo \'{"tags":["supplier"]}\' | companyctl company update 42 --from-json -');
  addCompanyFlags(cmd).action((ref: string, opts: UpdateOptions, c: Command) => run(c, (ctx) => updateRun(ctx, ref, opts)));
}

export async function updateRun(ctx: Context, ref: string, opts: UpdateOptions): Promise<number> {
  const { readCompanyFields } = await import('../../src/io/company-input.js');
  const { resolveRef } = await import('../../src/io/company-ref.js');
  const { parseVersionFlag } = await import('../../src/io/flags.js');
  const { parseCompanyPatch } = await import('../../src/domain/validate.js');
  const { CompanyctlError } = await import('../../src/errors.js');
  const key = resolveRef(ref);
  const ifVersion = parseVersionFlag(opts.ifVersion);
  const raw = await readCompanyFields(ctx, opts);
  if (Object.keys(raw).length === 0) {
    throw new CompanyctlError('COMPANYCTL_USAGE', 'nothing to change: give at least one field flag or --from-json', {
      hint: 'see "companyctl company update --help"',
    });
  }
  const patch = parseCompanyPatch(raw, ctx.now());
  const { updateCompany } = await import('../../src/services/company.js');
  const { companyDeps } = await import('../../src/context.js');
  const { writeCompany } = await import('../../src/io/output.js');
  const { company, changed } = await updateCompany(companyDeps(ctx), key, patch, { ifVersion });
  ctx.notice(changed ? `updated company ${company.id} to version ${company.version}` : `company ${company.id} already had these values; nothing changed`);
  await writeCompany(ctx, company);
  return 0;
}
