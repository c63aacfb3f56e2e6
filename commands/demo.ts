// companyctl demo: a throw-away home, a store, the sample companies from fixtures/, then a
// list and a get (the second get served by the file cache). Shows the main job end to end.
import type { Command } from 'commander';
import type { Runner } from '../src/cli.js';
import type { Context } from '../src/context.js';

export interface DemoOptions {
  keep?: boolean;
}

export function register(parent: Command, run: Runner): void {
  parent
    .command('demo')
    .description('run the main job on a throw-away SQLite store with sample companies')
    .option('--keep', 'keep the throw-away home folder and print its path')
    .addHelpText('after', '\nExample:\n  companyctl demo')
    .action((opts: DemoOptions, c: Command) => run(c, (ctx) => demoRun(ctx, opts)));
}

export async function demoRun(ctx: Context, opts: DemoOptions): Promise<number> {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const { runCli } = await import('../src/cli.js');
  const home = mkdtempSync(join(tmpdir(), 'companyctl-demo-'));
  const env = { ...ctx.env, COMPANYCTL_HOME: home, COMPANYCTL_DB: undefined, COMPANYCTL_CONFIG: undefined };
  const fixtures = fileURLToPath(new URL('../../fixtures/companies.json', import.meta.url));
  const companies = JSON.parse(readFileSync(fixtures, 'utf8')) as Record<string, unknown>[];
  const { PassThrough, Readable, Writable } = await import('node:stream');
  const discard = new Writable({ write: (_c, _e, cb) => cb() });
  const step = async (args: string[], stdin?: string): Promise<void> => {
    const silent = stdin !== undefined;
    if (silent && args[0] !== 'company') ctx.io.stderr.write(`\n$ companyctl ${args.join(' ')} < (a generated password)\n`);
    if (!silent) ctx.io.stderr.write(`\n$ companyctl ${args.map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n`);
    const io = silent ? { ...ctx.io, stdin: Readable.from([stdin]), stdout: discard, stdinIsTTY: false } : { ...ctx.io, stdin: new PassThrough() };
    const code = await runCli(['node', 'companyctl', ...args], io, env);
    if (code !== 0) throw new Error(`demo step "companyctl ${args.join(' ')}" exited ${code}`);
  };
  try {
    ctx.io.stderr.write(`companyctl demo: a throw-away store under ${home}\n`);
    // A throw-away admin password; the token goes to a 0600 file in the throw-away home.
    const password = (await import('node:crypto')).randomBytes(18).toString('base64url');
    await step(['init', '--admin', 'demo', '--password-stdin', '--quiet'], password);
    await step(['login', '-u', 'demo', '--password-stdin', '--insecure-storage', '--quiet'], password);
    ctx.io.stderr.write(`\n$ companyctl company create --from-json - < (each of ${companies.length} companies in fixtures/companies.json)\n`);
    for (const c of companies) await step(['company', 'create', '--from-json', '-', '--quiet'], JSON.stringify(c));
    await step(['company', 'list', '--sort', 'name']);
    const first = companies[0]!;
    await step(['company', 'get', String(first.domain), '--verbose']);
    await step(['company', 'get', String(first.domain), '--verbose', '--json']);
    await step(['company', 'update', String(first.domain), '--employees', '1250', '--if-version', '1', '--quiet']);
    await step(['cache', 'stats']);
  } finally {
    if (opts.keep) ctx.io.stderr.write(`\nkept ${home} (COMPANYCTL_HOME=${home} companyctl company list)\n`);
    else rmSync(home, { recursive: true, force: true });
  }
  return 0;
}
