// companyctl company restore <id>: undo a soft delete, if its keys are still free.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export function register(parent: Command, run: Runner): void {
  parent
    .command('restore')
    .description('restore a soft-deleted company')
    .argument('<id>', 'company id (see "company list --deleted")')
    .addHelpText('after', '\nExample:\n  companyctl company restore 42')
    .action((id: string, _opts: unknown, c: Command) => run(c, (ctx) => restoreRun(ctx, id)));
}

export async function restoreRun(ctx: Context, idArg: string): Promise<number> {
  const { resolveId } = await import('../../src/io/company-ref.js');
  const id = resolveId(idArg);
  const { restoreCompany } = await import('../../src/services/company.js');
  const { companyDeps } = await import('../../src/context.js');
  const { writeCompany } = await import('../../src/io/output.js');
  const { company } = await restoreCompany(companyDeps(ctx), id);
  ctx.notice(`restored company ${company.id} (${company.name})`);
  await writeCompany(ctx, company);
  return 0;
}
