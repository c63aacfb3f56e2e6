// companyctl audit: query the audit log (the noun's default verb; `audit verify` and `audit
// stats` are its subcommands, in verify.ts and stats.ts beside this file).
import type { Command } from 'commander';
import { parseInstant } from '../../src/domain/dates.js';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';

export interface AuditQueryOptions {
  actor?: string;
  action?: string;
  target?: string;
  since?: string;
  until?: string;
  limit?: string;
  ndjson?: boolean;
}

export function addFilterFlags(cmd: Command): Command {
  return cmd
    .option('--actor <user>', 'only changes by this user (API tokens included)')
    .option('--action <action>', 'only this action, or a prefix ending in * (company.*, import.*)')
    .option('--target <target>', 'only this target: company:42 (or 42), import:7, alert:deadEvents')
    .option('--since <time>', 'from this date, ISO time or age (7d, 36h)')
    .option('--until <time>', 'before this date, ISO time or age');
}

export function register(program: Command, run: Runner): Command {
  return addFilterFlags(
    program
      .command('audit')
      .description('query the audit trail (one hash-chained JSON line per change, every host); see also audit verify|stats')
      .option('--limit <n>', 'only the newest n matching lines')
      .option('--ndjson', 'the matching lines as they are stored, one a line'),
  )
    .addHelpText(
      'after',
      `
Examples:
  companyctl audit --actor alice --since 7d
  companyctl audit --target company:42 --json
  companyctl audit --action 'import.*' --ndjson | jq -c '{time, action, data}'
  companyctl audit verify`,
    )
    .action((opts: AuditQueryOptions, c: Command) => run(c, (ctx) => queryRun(ctx, opts)));
}

export async function auditFilter(ctx: Context, opts: AuditQueryOptions) {
  const { parseTime, parseWholeNumber } = await import('../../src/io/flags.js');
  const limit = opts.limit === undefined ? undefined : parseWholeNumber('--limit', opts.limit);
  return {
    actor: opts.actor,
    action: opts.action,
    target: opts.target,
    since: opts.since === undefined ? undefined : parseTime('--since', opts.since, ctx.now()),
    until: opts.until === undefined ? undefined : parseTime('--until', opts.until, ctx.now()),
    limit,
  };
}

export async function queryRun(ctx: Context, opts: AuditQueryOptions): Promise<number> {
  const filter = await auditFilter(ctx, opts);
  const { queryAudit } = await import('../../src/services/audit.js');
  const { outputFormat, writeJson, writeNdjson, writeRecords } = await import('../../src/io/output.js');
  const lines = await queryAudit(await ctx.store(), filter);
  const format = outputFormat(ctx, { ndjson: opts.ndjson });
  if (format === 'json') return writeJson(ctx, { items: lines }), 0;
  if (format === 'ndjson') return lines.forEach((l) => writeNdjson(ctx, l)), 0;
  if (lines.length === 0) return ctx.notice('no matching audit lines'), 0;
  const summary = (l: (typeof lines)[number]) =>
    l.diff
      ? Object.entries(l.diff)
          .map(([k, v]) => `${k}: ${JSON.stringify(v.from)} -> ${JSON.stringify(v.to)}`)
          .join('; ')
      : l.data && 'error' in l.data && (l.data as { error: unknown }).error != null
        ? `failed: ${JSON.stringify((l.data as { error: unknown }).error)}`
        : l.after
          ? 'created'
          : l.before
            ? 'removed'
            : '';
  const rows = lines.map((l) => ({ seq: l.seq, time: l.time, actor: l.actor, role: l.role, action: l.action, target: l.target, change: summary(l), command: l.command }));
  await writeRecords(ctx, rows, ['seq', 'time', 'actor', 'role', 'action', 'target', 'change', 'command']);
  return 0;
}
