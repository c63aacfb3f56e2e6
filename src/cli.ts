// The root program: global flags, command registration, and the one place that turns an
// error into a message and an exit code. Command modules are light (flags only); each
// imports its services inside its action, so `--help` loads nothing heavy.
import { Command, CommanderError, Option } from 'commander';
import type { Context, GlobalOptions, IO } from './context.js';
import { CompanyctlError, diskFullError, ExitCode, fromFsError, isCompanyctlError } from './errors.js';
import { escapeControl, terminalSafeJson } from './io/escape.js';
import type { Prompter } from './io/prompter.js';
import * as init from '../commands/init.js';
import * as demo from '../commands/demo.js';
import * as configCmd from '../commands/config.js';
import * as completionCmd from '../commands/completion.js';
import * as companyCreate from '../commands/company/create.js';
import * as companyGet from '../commands/company/get.js';
import * as companyList from '../commands/company/list.js';
import * as companyUpdate from '../commands/company/update.js';
import * as companyDelete from '../commands/company/delete.js';
import * as companyRestore from '../commands/company/restore.js';
import * as dbMigrate from '../commands/db/migrate.js';
import * as dbStatus from '../commands/db/status.js';
import * as dbBackup from '../commands/db/backup.js';
import * as dbRestore from '../commands/db/restore.js';
import * as dbCopy from '../commands/db/copy.js';
import * as cacheStats from '../commands/cache/stats.js';
import * as cacheClear from '../commands/cache/clear.js';
import * as importCmd from '../commands/import/import.js';
import * as importResume from '../commands/import/resume.js';
import * as importWait from '../commands/import/wait.js';
import * as importList from '../commands/import/list.js';
import * as importShow from '../commands/import/show.js';
import * as exportCmd from '../commands/export.js';
import * as enrichCmd from '../commands/enrich/enrich.js';
import * as enrichSetKey from '../commands/enrich/set-key.js';
import * as enrichList from '../commands/enrich/list.js';
import * as eventsList from '../commands/events/list.js';
import * as eventsRetry from '../commands/events/retry.js';
import * as eventsDrain from '../commands/events/drain.js';
import * as eventsPrune from '../commands/events/prune.js';
import * as auditQuery from '../commands/audit/query.js';
import * as auditVerify from '../commands/audit/verify.js';
import * as auditStats from '../commands/audit/stats.js';
import * as stats from '../commands/stats.js';
import * as webhookAdd from '../commands/webhook/add.js';
import * as webhookList from '../commands/webhook/list.js';
import * as webhookRemove from '../commands/webhook/remove.js';
import * as webhookTest from '../commands/webhook/test.js';
import * as brokerConsume from '../commands/broker/consume.js';
import * as brokerSetPassword from '../commands/broker/set-password.js';
import * as login from '../commands/login.js';
import * as logout from '../commands/logout.js';
import * as whoami from '../commands/whoami.js';
import * as authStatus from '../commands/auth/status.js';
import * as authToken from '../commands/auth/token.js';
import * as tokenCreate from '../commands/token/create.js';
import * as tokenList from '../commands/token/list.js';
import * as tokenRevoke from '../commands/token/revoke.js';
import * as userAdd from '../commands/user/add.js';
import * as userList from '../commands/user/list.js';
import * as userDisable from '../commands/user/disable.js';
import * as userEnable from '../commands/user/enable.js';
import * as userSetRole from '../commands/user/set-role.js';
import * as userPasswd from '../commands/user/passwd.js';
import type { Role } from './domain/roles.js';
import { VERSION } from './version.js';
import * as workerCmd from '../commands/worker/index.js';
import * as workerStatus from '../commands/worker/status.js';

/**
 * The role each command needs, in one place. 'none': no login (the command authenticates
 * itself or creates the store). A command missing here cannot run (tested).
 */
export const COMMAND_ROLES: Record<string, Role | 'none'> = {
  init: 'none',
  demo: 'none',
  config: 'none', // paths and settings only: no store, no secrets
  completion: 'none',
  login: 'none',
  logout: 'none',
  whoami: 'viewer',
  'auth status': 'none',
  'auth token': 'viewer',
  'company create': 'editor',
  'company get': 'viewer',
  'company list': 'viewer',
  'company update': 'editor',
  'company delete': 'editor', // --hard additionally needs admin
  'company restore': 'editor',
  'db migrate': 'admin',
  'db status': 'none', // tells an operator whether the store is usable; shows no data
  'db backup': 'admin',
  'db restore': 'none', // needs no store; replacing one (--force) checks for its admin itself
  'db copy': 'admin',
  'cache stats': 'viewer',
  'cache clear': 'viewer',
  import: 'editor',
  'import resume': 'editor',
  'import wait': 'viewer',
  'import list': 'viewer',
  'import show': 'viewer',
  export: 'viewer',
  enrich: 'editor',
  'enrich set-key': 'admin',
  'enrich list': 'viewer',
  'events list': 'viewer', // delivery state only: no payloads
  'events retry': 'editor',
  'events drain': 'editor',
  'events prune': 'admin',
  audit: 'admin', // who did what, with their command lines
  'audit verify': 'viewer', // integrity and a line count only, so a monitoring token can run it
  'audit stats': 'admin',
  stats: 'viewer',
  'webhook add': 'admin',
  'webhook list': 'admin',
  'webhook remove': 'admin',
  'webhook test': 'admin',
  'broker consume': 'editor',
  'broker set-password': 'admin',
  'token create': 'admin',
  'token list': 'admin',
  'token revoke': 'admin',
  'user add': 'admin',
  'user list': 'admin',
  'user disable': 'admin',
  'user enable': 'admin',
  'user set-role': 'admin',
  'user passwd': 'viewer', // your own; another user's needs admin
  worker: 'editor', // delivers events and runs queued imports as their submitters
  'worker status': 'viewer',
};

export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Runs a command's action with a fresh context; returns nothing, records the exit code. */
export type Runner = (cmd: Command, action: (ctx: Context) => Promise<number | void>) => Promise<void>;

export interface RunResult {
  exitCode: number;
}

/**
 * The whole command tree; with `argv`, a group's subcommands are defined only when that group
 * is on the command line (start-up time: `companyctl --help` needs the groups' names only).
 */
export function buildProgram(run: Runner, argv?: string[]): Command {
  const wanted = (name: string) => !argv || argv.includes(name);
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
    .option('--no-color', 'no colour (also when NO_COLOR is set)')
    .option('-y, --yes', 'answer yes to confirmations (needed without a terminal)')
    .addOption(new Option('--profile <name>', 'credential profile, to keep several logins apart').env('COMPANYCTL_PROFILE'))
    .addOption(new Option('--metrics-file <file>', 'where the Prometheus text file goes (default <state dir>/companyctl.prom)').env('COMPANYCTL_METRICS_FILE'))
    .showSuggestionAfterError(true)
    .helpCommand(false)
    // Inherited by every command made from here on: global flags show in each command's help.
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('after', `
Help on any command: "companyctl help <command>" or "companyctl <command> --help".
Settings and paths in force: "companyctl config". Shell completion: "companyctl completion bash|zsh|fish".

Examples:
  companyctl init && companyctl login
  companyctl company create --name "Acme Robotics" --domain acme-robotics.de --country DE
  companyctl import companies.csv && companyctl export -o all.csv
  COMPANYCTL_TOKEN=... companyctl company list --json | jq '.items[].name'`);

  init.register(program, run);
  demo.register(program, run);
  login.register(program, run);
  logout.register(program, run);
  whoami.register(program, run);

  const auth = program.command('auth').description('the current login: status and token').addHelpText('after', '\nExamples:\n  companyctl auth status\n  companyctl auth token        # the current token, for a script on this host');
  if (wanted('auth')) {
    authStatus.register(auth, run);
    authToken.register(auth, run);
  }

  const token = program.command('token').description('named API tokens for cron and CI (admin)').addHelpText('after', '\nExamples:\n  companyctl token create --name nightly --role editor --expires 90d\n  companyctl token list\n  companyctl token revoke nightly');
  if (wanted('token')) {
    tokenCreate.register(token, run);
    tokenList.register(token, run);
    tokenRevoke.register(token, run);
  }

  const user = program.command('user').description('users and roles (admin)').addHelpText('after', '\nExamples:\n  companyctl user add alice --role editor\n  companyctl user list\n  companyctl user set-role alice viewer\n  companyctl user disable alice');
  if (wanted('user')) {
    userAdd.register(user, run);
    userList.register(user, run);
    userDisable.register(user, run);
    userEnable.register(user, run);
    userSetRole.register(user, run);
    userPasswd.register(user, run);
  }

  const company = program.command('company').description('create, read, update and delete companies').addHelpText('after', '\nExamples:\n  companyctl company create --name "Acme GmbH" --domain acme.de --country DE\n  companyctl company get acme.de\n  companyctl company list --country DE --sort -updatedAt\n  companyctl company update acme.de --city Berlin --if-version 3\n  companyctl company delete acme.de && companyctl company restore acme.de');
  if (wanted('company')) {
    companyCreate.register(company, run);
    companyGet.register(company, run);
    companyList.register(company, run);
    companyUpdate.register(company, run);
    companyDelete.register(company, run);
    companyRestore.register(company, run);
  }

  const db = program.command('db').description('the store: schema migrations, status, backup, restore and copy').addHelpText('after', '\nExamples:\n  companyctl db status\n  companyctl db migrate\n  companyctl db backup /backups/companyctl-$(date +%F).db');
  if (wanted('db')) {
    dbMigrate.register(db, run);
    dbStatus.register(db, run);
    dbBackup.register(db, run);
    dbRestore.register(db, run);
    dbCopy.register(db, run);
  }

  const cache = program.command('cache').description('the file cache of company reads').addHelpText('after', '\nExamples:\n  companyctl cache stats\n  companyctl cache clear');
  if (wanted('cache')) {
    cacheStats.register(cache, run);
    cacheClear.register(cache, run);
  }

  const imp = importCmd.register(program, run);
  if (wanted('import')) {
    importResume.register(imp, run);
    importWait.register(imp, run);
    importList.register(imp, run);
    importShow.register(imp, run);
  }
  exportCmd.register(program, run);

  const enrich = enrichCmd.register(program, run);
  if (wanted('enrich')) {
    enrichSetKey.register(enrich, run);
    enrichList.register(enrich, run);
  }

  const webhook = program.command('webhook').description('outbound webhooks: signed event deliveries (admin)').addHelpText('after', '\nExamples:\n  companyctl webhook add https://hooks.example.com/companyctl --events \'company.*\'\n  companyctl webhook list\n  companyctl webhook test 1\n  companyctl webhook remove 1');
  if (wanted('webhook')) {
    webhookAdd.register(webhook, run);
    webhookList.register(webhook, run);
    webhookRemove.register(webhook, run);
    webhookTest.register(webhook, run);
  }

  const broker = program.command('broker').description('RabbitMQ: consume inbound company changes; events are published by the config file');
  if (wanted('broker')) {
    brokerConsume.register(broker, run);
    brokerSetPassword.register(broker, run);
  }

  const events = program.command('events').description('the event queue: deliveries to the audit log, counts, cache and webhooks').addHelpText('after', '\nExamples:\n  companyctl events list --failed\n  companyctl events retry --all-dead\n  companyctl events drain --wait 30s');
  if (wanted('events')) {
    eventsList.register(events, run);
    eventsRetry.register(events, run);
    eventsDrain.register(events, run);
    eventsPrune.register(events, run);
  }

  const audit = auditQuery.register(program, run);
  if (wanted('audit')) {
    auditVerify.register(audit, run);
    auditStats.register(audit, run);
  }

  const worker = workerCmd.register(program, run);
  if (wanted('worker')) workerStatus.register(worker, run);

  stats.register(program, run);
  configCmd.register(program, run);
  completionCmd.register(program, run);
  return program;
}

/** Parse argv, run one command, and return its exit code. Never calls process.exit. */
export async function runCli(argv: string[], io: IO, env: Record<string, string | undefined>, prompter?: Prompter): Promise<number> {
  // `companyctl help <command...>` is `companyctl <command...> --help`.
  if (argv[2] === 'help') argv = [...argv.slice(0, 2), ...argv.slice(3), '--help'];
  const wantsJson = argv.includes('--json');
  const debug = argv.includes('--debug');
  let exitCode: number = ExitCode.ok;
  let ctx: Context | undefined;
  const run: Runner = async (cmd, action) => {
    // Loaded here, not at the top: `--help` and `--version` need none of it.
    const { createContext, identify } = await import('./context.js');
    ctx = createContext(io, env, cmd.optsWithGlobals<GlobalOptions>(), prompter, argv.slice(2));
    const started = performance.now();
    const path = commandPath(cmd);
    // An upgrade's `db migrate` authenticates against the store it is about to migrate.
    if (path === 'db migrate') ctx.schemaPendingOk = true;
    let code: number = ExitCode.ok;
    try {
      const need = COMMAND_ROLES[path];
      if (need === undefined) throw new CompanyctlError('COMPANYCTL_INTERNAL', `internal error: no role is declared for "${path}"`);
      if (need !== 'none') {
        const identity = await identify(ctx);
        (await import('./services/auth.js')).requireRole(identity, need, `companyctl ${path}`);
      }
      const result = await action(ctx);
      if (typeof result === 'number') exitCode = code = result;
    } catch (e) {
      code = isCompanyctlError(e) ? e.exitCode : ExitCode.failure;
      if (isCompanyctlError(e) && e.code === 'COMPANYCTL_AUTH_FORBIDDEN') await auditRefusal(ctx, path, e.message);
      throw e;
    } finally {
      await finishRun(ctx, path, code, (performance.now() - started) / 1000);
      await ctx.close();
    }
  };
  const program = buildProgram(run, argv);
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
    const code = reportError(err, io, { json: wantsJson, debug, usage: usageHint(program, argv) });
    if (code !== ExitCode.ok) await logError(err, code, env, argv, ctx);
    return code;
  }
}

/**
 * After every command: deliver the events it made (only if it wrote: a read never opens the
 * store for this), then count it in the metrics. Never changes the command's outcome.
 */
async function finishRun(ctx: Context, path: string, code: number, seconds: number): Promise<void> {
  try {
    const { recordCommandQuickly, failpoint } = await import('./context.js');
    // One appended line; the text file is rendered after writes, and at least once a minute.
    if (recordCommandQuickly(ctx, path, code, seconds) && !ctx.wrote) return;
    const { eventsEnv } = await import('./context.js');
    const events = await import('./services/events.js');
    const env = eventsEnv(ctx);
    if (ctx.wrote) {
      failpoint(ctx, 'after-commit');
      await events.afterWrite(env, (m) => ctx.notice(m));
    }
    await events.updateMetricsFile(env);
  } catch (e) {
    const { appLog } = await import('./context.js');
    const message = `metrics: ${String((fromFsError(e) ?? (e as Error))?.message ?? e)}`;
    appLog(ctx, { level: 'warn', code: 'COMPANYCTL_METRICS_FAILED', message });
    ctx.notice(`warning: ${message}`);
  }
}

/** A refused command becomes an `auth.forbidden` event in the audit trail. */
async function auditRefusal(ctx: Context, path: string, reason: string): Promise<void> {
  const { appLog } = await import('./context.js');
  const warn = (message: string) => appLog(ctx, { level: 'warn', code: 'COMPANYCTL_AUDIT_FAILED', message });
  await (await import('./services/security-events.js')).auditRefusal({ store: () => ctx.store(), actor: ctx.actor(), now: ctx.now(), warn }, path, reason);
}

/** Every error the handler reports also goes to the JSON app log (secrets removed). */
async function logError(err: unknown, exitCode: number, env: Record<string, string | undefined>, argv: string[], ctx: Context | undefined): Promise<void> {
  try {
    const { appLog } = await import('./context.js');
    const { resolvePaths } = await import('./infra/paths.js');
    const known = isCompanyctlError(err) ? err : fromFsError(err);
    const code = diskFullError(err)?.code ?? (known ? known.code : err instanceof CommanderError ? 'COMPANYCTL_USAGE' : 'COMPANYCTL_INTERNAL');
    appLog(
      { paths: ctx?.paths ?? resolvePaths(env), argv: argv.slice(2) },
      {
        level: exitCode === ExitCode.usage || exitCode === ExitCode.auth || exitCode === ExitCode.cancelled ? 'warn' : 'error',
        code,
        message: String((err as Error)?.message ?? err).replace(/^error: /, ''),
        exitCode,
        ...(code === 'COMPANYCTL_INTERNAL' && err instanceof Error ? { stack: err.stack } : {}),
      },
    );
  } catch {
    // the app log is best effort
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
    const full = err.message.replace(/^error: /, '');
    // commander appends "(Did you mean x?)": under --json it is a field of its own.
    const did = /\n?\(Did you mean (.+?)\?\)\s*$/.exec(full);
    const message = did ? full.slice(0, did.index) : full;
    if (opts.json) {
      const suggestions = did ? did[1]!.replace(/^one of /, '').split(/,\s*/) : undefined;
      const extra = suggestions ? { suggestion: suggestions[0], suggestions } : {};
      io.stderr.write(`${JSON.stringify({ error: { code: 'COMPANYCTL_USAGE', message, hint: opts.usage, ...extra } })}\n`);
    } else if (opts.usage) {
      io.stderr.write(`${opts.usage}\n`);
    }
    return ExitCode.usage;
  }
  const known = diskFullError(err) ?? (isCompanyctlError(err)
    ? err
    : fromFsError(err) ?? new CompanyctlError('COMPANYCTL_INTERNAL', `internal error: ${(err as Error)?.message ?? String(err)}`, {
        hint: opts.debug ? undefined : 'run again with --debug for details, and report it with the command you ran',
      }));
  // Messages echo input (file headers, cells, remote replies): escaped, never obeyed by the terminal.
  if (opts.json) {
    const { code, message, hint, field, data } = known.toJSON();
    io.stderr.write(`${terminalSafeJson({ error: { code, message, hint: hint ?? null, field, data } })}\n`);
  } else {
    io.stderr.write(`companyctl: ${escapeControl(known.message, { oneLine: true })}\n`);
    if (known.hint) io.stderr.write(`hint: ${escapeControl(known.hint, { oneLine: true })}\n`);
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
  // A closed pipe (`companyctl company list | head`) is not an error; any other failure to
  // write the data (a full disk under `> out.csv`) is, after the command had its say.
  let stdoutError: NodeJS.ErrnoException | undefined;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    stdoutError ??= e;
  });
  // Prompts and other libraries read colour from the environment: one switch for all of them.
  if (argv.includes('--no-color')) process.env.NO_COLOR = '1';
  if (process.env.NO_COLOR) process.env.FORCE_COLOR = '0';
  const code = await runCli(argv, io, process.env);
  await new Promise((r) => setImmediate(r));
  if (stdoutError && code === ExitCode.ok) {
    process.exitCode = reportError(stdoutError, io, { json: argv.includes('--json'), debug: argv.includes('--debug') });
    await logError(stdoutError, process.exitCode, process.env, argv, undefined);
    return;
  }
  process.exitCode = code;
}
