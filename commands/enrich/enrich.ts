// companyctl enrich: fill in missing company fields from the configured company-data API.
// Selection by the `company list` filters or --ids; resumable; exit 3 when some companies failed.
import type { Command } from 'commander';
import type { Runner } from '../../src/cli.js';
import type { Context } from '../../src/context.js';
import { addFilterFlags, type FilterFlags } from '../../src/io/filter-flags.js';
import type { EnrichProgress, EnrichSummary } from '../../src/services/enrich.js';

export interface EnrichCommandOptions extends FilterFlags {
  ids?: string[];
  limit?: string;
  onlyMissing?: boolean;
  overwrite?: boolean;
  refresh?: boolean;
  restart?: boolean;
  queue?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function register(program: Command, run: Runner): Command {
  return addFilterFlags(
    program
      .command('enrich')
    .description('fill in company fields from the configured company-data API; see also enrich set-key|list')
    .option('--ids <id,id,...>', 'these companies (repeatable); instead of the filters', collect),
  )
    .option('--limit <n>', 'at most n companies (lowest ids first)')
    .option('--only-missing', 'only companies with at least one empty mapped field')
    .option('--overwrite', 'also replace values that were set by hand (default: keep them)')
    .option('--refresh', 'ask the API again even when a cached answer is still fresh')
    .option('--restart', 'abandon an unfinished run of the same selection and start afresh')
    .option('--queue', 'check the selection, queue the run and return at once with the job id; a worker runs it')
    .addHelpText(
      'after',
      `
The API, its key, the field mapping, concurrency, rate limit, timeout, retries and cache
lifetime are set in the config file ("enrich" section; see the README).

Exit codes: 0 no company failed, 3 some failed (listed on stderr and in --json), 1 all failed
or the run could not start. A killed run resumes where it stopped: run the same command again.

Examples:
  companyctl enrich --country DE --only-missing
  companyctl enrich --ids 12,40,41 --json
  companyctl enrich --tag supplier --overwrite --refresh`,
    )
    .action((opts: EnrichCommandOptions, c: Command) => run(c, (ctx) => enrichRun(ctx, opts)));
}

export async function enrichRun(ctx: Context, opts: EnrichCommandOptions): Promise<number> {
  const { CompanyctlError, ExitCode } = await import('../../src/errors.js');
  if (opts.queue) {
    await runEnrich(ctx, opts, undefined, undefined, { checkOnly: true });
    return (await import('../../src/io/worker-cli.js')).queueEnrichRun(ctx, { ...opts, queue: undefined });
  }
  const progress = await enrichProgress(ctx);
  const { withCancellation } = await import('../../src/io/cancellation.js');
  const summary = (await withCancellation(ctx, 'stopping: requests in flight are dropped and the run stays resumable', (signal) => runEnrich(ctx, opts, progress, signal)))!;
  await writeSummary(ctx, summary);
  const succeeded = summary.enriched + summary.unchanged + summary.notFound + summary.skipped;
  if (summary.failed > 0 && succeeded === 0) {
    throw new CompanyctlError('COMPANYCTL_ENRICH_FAILED', `every company of enrich run ${summary.runId} failed (${summary.failed})`, {
      hint: 'check the API (baseUrl, key, status) and run the same command again: only failed companies are not retried; use --restart to retry them',
      data: { runId: summary.runId },
    });
  }
  return summary.failed > 0 ? ExitCode.partial : ExitCode.ok;
}

/**
 * The run itself, from the command's options (also what a worker runs for `enrich --queue`, with
 * the submitter as `actor`). `checkOnly`: validate the selection flags and stop.
 */
export async function runEnrich(
  ctx: Context,
  opts: EnrichCommandOptions,
  progress: EnrichProgress | undefined,
  signal: AbortSignal | undefined,
  extra: { checkOnly?: boolean; actor?: string } = {},
): Promise<EnrichSummary | undefined> {
  const { CompanyctlError } = await import('../../src/errors.js');
  const { parseEnrichConfig } = await import('../../src/services/enrich-config.js');
  const { enrichCompanies, resolveApiKey } = await import('../../src/services/enrich.js');
  const { parseListOptions } = await import('../../src/io/list-options.js');
  const { companyDeps } = await import('../../src/context.js');

  const filters = { name: opts.name, country: opts.country, industry: opts.industry, status: opts.status, tag: opts.tag, updatedSince: opts.updatedSince };
  const anyFilter = Object.values(filters).some((v) => v !== undefined);
  let ids: number[] | undefined;
  if (opts.ids) {
    if (anyFilter || opts.limit) throw new CompanyctlError('COMPANYCTL_USAGE', '--ids: cannot be combined with filters or --limit', { field: '--ids' });
    const parts = opts.ids.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
    const bad = parts.find((p) => !/^\d+$/.test(p) || Number(p) < 1);
    if (bad !== undefined || parts.length === 0) {
      throw new CompanyctlError('COMPANYCTL_USAGE', `--ids: ${JSON.stringify(bad ?? '')} is not a company id`, { field: '--ids', hint: 'e.g. --ids 12,40,41' });
    }
    ids = [...new Set(parts.map(Number))].sort((a, b) => a - b);
  }
  const list = ids ? undefined : parseListOptions({ ...filters, sort: 'id', limit: opts.limit }, ctx.now(), true);
  const raw = ids ? { ids } : { ...Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== undefined)), ...(opts.limit ? { limit: opts.limit } : {}) };
  // Queued runs use the API settings of the host whose worker runs them.
  if (extra.checkOnly) return undefined;

  const config = parseEnrichConfig(ctx.config().enrich, ctx.paths.configFile);
  const { keychain } = await import('../../src/infra/credentials.js');
  const apiKey = await resolveApiKey(config, ctx.env, (account) => keychain.get({ account, file: '' }));
  return enrichCompanies(
    { company: { ...companyDeps(ctx), ...(extra.actor ? { actor: extra.actor } : {}) }, config, apiKey, cache: ctx.cache(), progress, signal },
    { list, ids, raw },
    { overwrite: opts.overwrite, onlyMissing: opts.onlyMissing, refresh: opts.refresh, restart: opts.restart },
  );
}

async function writeSummary(ctx: Context, s: EnrichSummary): Promise<void> {
  const { outputFormat, writeJson, writeRecord } = await import('../../src/io/output.js');
  if (outputFormat(ctx) === 'json') return writeJson(ctx, s);
  const { failures, ...rest } = s;
  await writeRecord(ctx, rest, ['', '']);
  for (const f of failures) ctx.notice(`company ${f.companyId}: ${f.message} (${f.code})`);
  if (s.failed > failures.length) ctx.notice(`… and ${s.failed - failures.length} more failures (companyctl enrich list)`);
  if (s.total === 0) ctx.notice('no companies match');
}

/** A bar on stderr when it is a terminal; nothing in cron and CI. */
async function enrichProgress(ctx: Context): Promise<EnrichProgress | undefined> {
  if (!ctx.io.stderrIsTTY || ctx.globals.quiet) return undefined;
  const { default: cliProgress } = await import('cli-progress');
  let bar: InstanceType<typeof cliProgress.SingleBar> | undefined;
  return {
    start(info) {
      if (info.resumed) ctx.notice(`resuming enrich run ${info.runId}: ${info.done} of ${info.total} companies already done`);
      bar = new cliProgress.SingleBar(
        {
          stream: ctx.io.stderr as NodeJS.WriteStream,
          format: '{bar} {value}/{total} | enriched {enriched} | unchanged {unchanged} | not found {notFound} | failed {failed} | {requests} requests, {cacheHits} cached | ETA {eta_formatted}',
          hideCursor: true,
          noTTYOutput: true,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(info.total, info.done, { enriched: 0, unchanged: 0, notFound: 0, failed: 0, requests: 0, cacheHits: 0 });
    },
    update(c) {
      bar?.update(c.done, c);
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
