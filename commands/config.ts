// companyctl config: every setting in force and every path in use, with where each came from
// (a flag, an environment variable, the config file or the default). Opens no store.
import type { Command } from 'commander';
import type { Runner } from '../src/cli.js';
import type { Context } from '../src/context.js';

export function register(program: Command, run: Runner): void {
  program
    .command('config')
    .description('show the settings in force and the paths in use, with where each came from')
    .addHelpText(
      'after',
      `
Sources: "--db" (a flag), "COMPANYCTL_DB" (an environment variable), "config file", "default".

Examples:
  companyctl config
  companyctl config --json | jq -r '.[] | select(.setting == "store") | .value'
  COMPANYCTL_HOME=/tmp/x companyctl config`,
    )
    .action((_opts: unknown, c: Command) => run(c, (ctx) => configRun(ctx, c)));
}

export interface ConfigRow {
  setting: string;
  value: string | number | boolean | null;
  source: string;
}

/** commander knows whether a global flag came from the command line or its environment variable. */
function flagSource(ctx: Context, c: Command, key: string, flag: string, envName: string): string | undefined {
  const src = c.getOptionValueSourceWithGlobals(key);
  if (src === 'cli') return flag;
  if (src === 'env' || ctx.env[envName]) return envName;
  return undefined;
}

export async function configRun(ctx: Context, c: Command): Promise<number> {
  const { pathSources } = await import('../src/infra/paths.js');
  const { colourLevel } = await import('../src/io/colour.js');
  const { writeJson, writeList, outputFormat } = await import('../src/io/output.js');
  const { join } = await import('node:path');
  const { existsSync } = await import('node:fs');
  const env = ctx.env;
  const p = ctx.paths;
  const from = pathSources(ctx.globals.config ? { ...env, COMPANYCTL_CONFIG: ctx.globals.config } : env);
  const cfg = ctx.config();
  const inFile = (k: string) => Object.prototype.hasOwnProperty.call(cfg, k);
  const rows: ConfigRow[] = [];
  const add = (setting: string, value: ConfigRow['value'], source: string) => rows.push({ setting, value, source });

  add('config file', p.configFile, flagSource(ctx, c, 'config', '--config', 'COMPANYCTL_CONFIG') ?? from.configFile);
  add('config file exists', existsSync(p.configFile), 'checked');
  const loc = ctx.storeLocation();
  add('store', loc.display, flagSource(ctx, c, 'db', '--db', 'COMPANYCTL_DB') ?? (inFile('db') ? 'config file' : from.dataDir));
  add('store dialect', loc.dialect, 'from the store');
  add('data folder', p.dataDir, from.dataDir);
  add('config folder', p.configDir, from.configDir);
  add('cache folder', p.cacheDir, from.cacheDir);
  add('state folder', p.stateDir, from.stateDir);
  add('audit log', join(p.stateDir, 'audit.log'), from.stateDir);
  add('app log', join(p.stateDir, 'app.log'), from.stateDir);
  add('metrics file', ctx.globals.metricsFile || cfg.metricsFile || join(p.stateDir, 'companyctl.prom'),
    flagSource(ctx, c, 'metricsFile', '--metrics-file', 'COMPANYCTL_METRICS_FILE') ?? (cfg.metricsFile ? 'config file' : from.stateDir));
  add('profile', ctx.profile(), flagSource(ctx, c, 'profile', '--profile', 'COMPANYCTL_PROFILE') ?? 'default');
  add('token', env.COMPANYCTL_TOKEN ? '(set, hidden)' : '(keychain or token file, after login)', env.COMPANYCTL_TOKEN ? 'COMPANYCTL_TOKEN' : 'default');
  add('cache', ctx.globals.cache === false ? 'off' : 'on', ctx.globals.cache === false ? '--no-cache' : 'default');
  const cacheTtl = ctx.cacheTtlSeconds();
  const ttlKey = loc.dialect === 'postgresql' ? 'cacheTtlSeconds' : 'sqliteCacheTtlSeconds';
  add(ttlKey, cacheTtl, inFile(ttlKey) ? 'config file' : 'default');
  add('sessionCacheSeconds', cfg.sessionCacheSeconds ?? 30, inFile('sessionCacheSeconds') ? 'config file' : 'default');
  const colour = colourLevel(ctx) > 0;
  add('colour', colour ? 'on' : 'off', ctx.globals.color === false ? '--no-color' : env.NO_COLOR ? 'NO_COLOR' : env.FORCE_COLOR ? 'FORCE_COLOR' : 'terminal');
  for (const k of ['events', 'audit', 'alerts', 'enrich'] as const) {
    add(k, inFile(k) ? JSON.stringify(cfg[k]) : '(defaults)', inFile(k) ? 'config file' : 'default');
  }

  if (outputFormat(ctx) === 'json') return writeJson(ctx, rows), 0;
  await writeList(ctx, ['setting', 'value', 'source'], rows.map((r) => [r.setting, r.value, r.source]));
  return 0;
}
