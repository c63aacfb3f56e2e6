// The root program: global flags, command registration, and the one place that turns an
// error into a message and an exit code. Command modules are light (flags only); each
// imports its services inside its action, so `--help` loads nothing heavy.
import { Command, CommanderError, Option } from 'commander';
import { createContext, type Context, type GlobalOptions, type IO } from './context.js';
import { CompanyctlError, ExitCode, isCompanyctlError } from './errors.js';
import type { Prompter } from './io/prompter.js';
import * as init from '../commands/init.js';
import * as demo from '../commands/demo.js';
import * as companyCreate from '../commands/company/create.js';
import * as companyGet from '../commands/company/get.js';
import * as companyList from '../commands/company/list.js';
import * as companyUpdate from '../commands/company/update.js';
import * as companyDelete from '../commands/company/delete.js';
import * as companyRestore from '../commands/company/restore.js';
import * as dbMigrate from '../commands/db/migrate.js';
import * as dbStatus from '../commands/db/status.js';
import * as cacheStats from '../commands/cache/stats.js';
import * as cacheClear from '../commands/cache/clear.js';

/** Runs a command's action with a fresh context; returns nothing, records the exit code. */
export type Runner = (cmd: Command, action: (ctx: Context) => Promise<number | void>) => Promise<void>;

export interface RunResult {
  exitCode: number;
}

export function buildProgram(run: Runner): Command {
  const program = new Command('companyctl')
    .description('Company records from the command line: CRUD, imports, exports, events')
    .version(VERSION, '-V, --version')
    .addOption(new Option('--json', 'print one JSON document on stdout (errors as JSON on stderr)'))
    .addOption(new Option('--db <path|url>', 'store: a SQLite file path or a postgresql:// URL').env('COMPANYCTL_DB'))
    .addOption(new Option('--config <file>', 'config file').env('COMPANYCTL_CONFIG'))
    .option('--no-cache', 'neither read nor fill the file cache')
    .option('-q, --quiet', 'print no notices on stderr')
    .option('-v, --verbose', 'print more notices on stderr')
    .option('--debug', 'print stack traces of internal errors')
    .option('-y, --yes', 'answer yes to confirmations (needed without a terminal)')
    .showSuggestionAfterError(true)
    .helpCommand(false);

  init.register(program, run);
  demo.register(program, run);

  const company = program.command('company').description('create, read, update and delete companies');
  companyCreate.register(company, run);
  companyGet.register(company, run);
  companyList.register(company, run);
  companyUpdate.register(company, run);
  companyDelete.register(company, run);
  companyRestore.register(company, run);

  const db = program.command('db').description('the store: schema migrations and status');
  dbMigrate.register(db, run);
  dbStatus.register(db, run);

  const cache = program.command('cache').description('the file cache of company reads');
  cacheStats.register(cache, run);
  cacheClear.register(cache, run);
  return program;
}

const VERSION = '0.1.0';

/** Parse argv, run one command, and return its exit code. Never calls process.exit. */
export async function runCli(argv: string[], io: IO, env: Record<string, string | undefined>, prompter?: Prompter): Promise<number> {
  const wantsJson = argv.includes('--json');
  const debug = argv.includes('--debug');
  let exitCode: number = ExitCode.ok;
  let ctx: Context | undefined;
  const run: Runner = async (cmd, action) => {
    ctx = createContext(io, env, cmd.optsWithGlobals<GlobalOptions>(), prompter);
    try {
      const code = await action(ctx);
      if (typeof code === 'number') exitCode = code;
    } finally {
      await ctx.close();
    }
  };
  const program = buildProgram(run);
  const configure = (c: Command) => {
    c.exitOverride();
    c.configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // Under --json the error is printed once, as JSON, by reportError.
      outputError: (s, write) => (wantsJson ? undefined : write(s)),
    });
    c.commands.forEach(configure);
  };
  configure(program);
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    return reportError(err, io, { json: wantsJson, debug, usage: usageHint(program, argv) });
  }
}

function usageHint(program: Command, argv: string[]): string {
  let cmd = program;
  for (const word of argv.slice(2)) {
    const sub = cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!sub) break;
    cmd = sub;
  }
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return `usage: ${names.join(' ')} ${cmd.usage()}  (see "${names.join(' ')} --help")`;
}

/** The one error -> message + exit code mapping. */
export function reportError(err: unknown, io: IO, opts: { json: boolean; debug: boolean; usage?: string }): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
    const message = err.message.replace(/^error: /, '');
    if (opts.json) {
      io.stderr.write(`${JSON.stringify({ error: { code: 'COMPANYCTL_USAGE', message, hint: opts.usage } })}\n`);
    } else if (opts.usage) {
      io.stderr.write(`${opts.usage}\n`);
    }
    return ExitCode.usage;
  }
  const known = isCompanyctlError(err)
    ? err
    : new CompanyctlError('COMPANYCTL_INTERNAL', `internal error: ${(err as Error)?.message ?? String(err)}`, {
        hint: opts.debug ? undefined : 'run again with --debug for details, and report it with the command you ran',
      });
  if (opts.json) {
    const { code, message, hint, field, data } = known.toJSON();
    io.stderr.write(`${JSON.stringify({ error: { code, message, hint: hint ?? null, field, data } })}\n`);
  } else {
    io.stderr.write(`companyctl: ${known.message}\n`);
    if (known.hint) io.stderr.write(`hint: ${known.hint}\n`);
  }
  if (opts.debug && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
  return known.exitCode;
}

/** Entry point used by bin/companyctl.js. */
export async function main(argv: string[]): Promise<void> {
  const io: IO = {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    stdinIsTTY: !!process.stdin.isTTY,
    stdoutIsTTY: !!process.stdout.isTTY,
    stderrIsTTY: !!process.stderr.isTTY,
  };
  // A closed pipe (`companyctl company list | head`) is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  process.exitCode = await runCli(argv, io, process.env);
}
