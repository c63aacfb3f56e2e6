// companyctl company restore <id>: undo a soft delete, if its keys are still free.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('restore')
    .description('restore a soft-deleted company')
    .argument('<ref>', 'id (42), domain (acme.de), LEI, or registration key (DE:HRB 12345); see "company list --deleted"')
    .addHelpText('after', '\nExamples:\n  companyctl company restore 42\n  companyctl company restore acme.de')
    .action((id: string, _opts: unknown, c: Command) => run(c, (ctx) => restoreRun(ctx, id)));
}

export async function restoreRun(ctx: Context, idArg: string): Promise<number> {
  const { resolveRef } = await import('../../src/io/company-ref.js');
  const key = resolveRef(idArg);
  const { restoreCompany } = await import('../../src/services/company.js');
  const { companyDeps } = await import('../../src/context.js');
  const { writeCompany } = await import('../../src/io/output.js');
  const { company } = await restoreCompany(companyDeps(ctx), key);
  ctx.notice(`restored company ${company.id} (${company.name})`);
  await writeCompany(ctx, company);
  return 0;
}
