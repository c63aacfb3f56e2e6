// Where companyctl keeps its files (XDG base directories, or everything under COMPANYCTL_HOME).
import { chmodSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

export interface Paths {
  dataDir: string;
  configDir: string;
  cacheDir: string;
  stateDir: string;
  defaultDb: string;
  configFile: string;
}

type Env = Record<string, string | undefined>;

export function resolvePaths(env: Env): Paths {
  const home = env.COMPANYCTL_HOME;
  const base = (xdg: string, fallback: string, sub: string) =>
    home ? join(home, sub) : join(env[xdg] || join(env.HOME || homedir(), fallback), 'companyctl');
  const dataDir = base('XDG_DATA_HOME', '.local/share', 'data');
  const configDir = base('XDG_CONFIG_HOME', '.config', 'config');
  const cacheDir = env.COMPANYCTL_CACHE_DIR || base('XDG_CACHE_HOME', '.cache', 'cache');
  const stateDir = env.COMPANYCTL_STATE_DIR || base('XDG_STATE_HOME', '.local/state', 'state');
  return {
    dataDir,
    configDir,
    cacheDir,
    stateDir,
    defaultDb: join(dataDir, 'companyctl.db'),
    configFile: env.COMPANYCTL_CONFIG || join(configDir, 'config.json'),
  };
}

/** Where each folder and the config file came from: the variable that set it, or "default". */
export function pathSources(env: Env): Record<'dataDir' | 'configDir' | 'cacheDir' | 'stateDir' | 'configFile', string> {
  const base = (xdg: string) => (env.COMPANYCTL_HOME ? 'COMPANYCTL_HOME' : env[xdg] ? xdg : 'default');
  return {
    dataDir: base('XDG_DATA_HOME'),
    configDir: base('XDG_CONFIG_HOME'),
    cacheDir: env.COMPANYCTL_CACHE_DIR ? 'COMPANYCTL_CACHE_DIR' : base('XDG_CACHE_HOME'),
    stateDir: env.COMPANYCTL_STATE_DIR ? 'COMPANYCTL_STATE_DIR' : base('XDG_STATE_HOME'),
    configFile: env.COMPANYCTL_CONFIG ? 'COMPANYCTL_CONFIG' : base('XDG_CONFIG_HOME'),
  };
}

/**
 * Create a folder (and parents) readable by the owner only. Folders that already exist keep
 * their mode: `--rejects /tmp/x.csv` or COMPANYCTL_STATE_DIR=/tmp must never chmod /tmp.
 */
export function ensurePrivateDir(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (first === undefined) return;
  // Only the folders made just now (first .. dir), whatever the umask took off.
  const made = resolve(dir);
  for (let d = made; ; d = dirname(d)) {
    chmodSync(d, 0o700);
    if (d === resolve(first) || dirname(d) === d) break;
  }
}
