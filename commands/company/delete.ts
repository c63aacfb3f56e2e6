// companyctl company delete <ref>: soft (restorable) by default; --hard removes it for good.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface DeleteOptions {
  hard?: boolean;
  ifVersion?: string;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('delete')
    .description('delete a company (soft and restorable unless --hard)')
    .argument('<ref>', 'id, domain, LEI or registration key')
    .option('--hard', 'remove the row for good (admin; asks on a terminal, needs --yes without one)')
    .option('--if-version <n>', 'fail unless the company is still at this version')
    .addHelpText('after', '\nExamples:\n  companyctl company delete 42\n  companyctl company delete 42 --hard --yes')
    .action((ref: string, opts: DeleteOptions, c: Command) => run(c, (ctx) => deleteRun(ctx, ref, opts)));
}

export async function deleteRun(ctx: Context, ref: string, opts: DeleteOptions): Promise<number> {
  const { resolveRef } = await import('../../src/io/company-ref.js');
  const { parseVersionFlag } = await import('../../src/io/flags.js');
  const { CompanyctlError } = await import('../../src/errors.js');
  const key = resolveRef(ref);
  const ifVersion = parseVersionFlag(opts.ifVersion);
  if (opts.hard) (await import('../../src/services/auth.js')).requireRole(ctx.identity, 'admin', 'a hard delete');
  if (opts.hard && !ctx.globals.yes) {
    if (!ctx.prompter.canPrompt) {
      throw new CompanyctlError('COMPANYCTL_CONFIRMATION_REQUIRED', 'a hard delete cannot be undone: pass --yes to confirm', { field: '--yes' });
    }
    const ok = await ctx.prompter.confirm(`Delete company ${ref} for good? This cannot be undone`, false);
    if (!ok) throw new CompanyctlError('COMPANYCTL_DECLINED', 'not confirmed; nothing was deleted');
  }
  const { deleteCompany } = await import('../../src/services/company.js');
  const { companyDeps } = await import('../../src/context.js');
  const { writeJson } = await import('../../src/io/output.js');
  const { company, hard } = await deleteCompany(companyDeps(ctx), key, { hard: opts.hard, ifVersion });
  const result = { id: company.id, name: company.name, deleted: hard ? 'hard' : 'soft', deletedAt: hard ? ctx.now().toISOString() : company.deletedAt };
  if (ctx.globals.json) writeJson(ctx, result);
  else if (hard) ctx.notice(`deleted company ${company.id} (${company.name}) for good`);
  else ctx.notice(`deleted company ${company.id} (${company.name}); undo with "companyctl company restore ${company.id}"`);
  return 0;
}
