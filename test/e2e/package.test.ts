// The package as users get it: npm pack -> npm install -g into an empty prefix -> run demo.
// The registry serves the dependencies; better-sqlite3's native build comes from a local
// prebuild made of this checkout's compiled binary (a source build takes minutes here).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempHome } from '../helpers.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd ?? ROOT, env: opts.env ?? cleanNpmEnv(), timeout: opts.timeout ?? 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** The caller's environment less what `npm test` or a project sets (npm_*, COMPANYCTL_*). */
function cleanNpmEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|COMPANYCTL_)/i.test(k)) env[k] = v;
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Every installed copy of a package under `dir` (folder name match, with its version). */
function copiesOf(dir: string, name: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const p = join(d, e.name);
      if (e.name === name && existsSync(join(p, 'package.json'))) {
        const m = JSON.parse(readFileSync(join(p, 'package.json'), 'utf8')) as { name?: string; version: string };
        if (m.name === name) found.push(m.version);
      }
      walk(p);
    }
  };
  walk(dir);
  return found;
}

describe('npm pack -> npm install -g -> companyctl demo', () => {
  let tmp: ReturnType<typeof tempHome>;
  let tarball: string;
  let files: string[];

  beforeAll(() => {
    tmp = tempHome();
    expect(existsSync(join(ROOT, 'dist', 'src', 'cli.js')), 'dist/ is built by npm test (pretest)').toBe(true);
    const packed = sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp.home]);
    expect(packed.code, packed.stderr).toBe(0);
    const info = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    tarball = join(tmp.home, info[0]!.filename);
    files = info[0]!.files.map((f) => f.path);
  });
  afterAll(() => tmp?.cleanup());

  it('ships the built files and the demo data, not the sources, tests or CI', () => {
    expect(files).toContain('bin/companyctl.js');
    expect(files).toContain('dist/src/cli.js');
    expect(files).toContain('fixtures/companies.json');
    expect(files).toContain('README.md');
    const stray = files.filter((f) => /^(src|test|commands|scripts|\.ci|fixtures\/import|fixtures\/enrich)\//.test(f) || f.endsWith('.ts'));
    expect(stray).toEqual([]);
  });

  it('installs into an empty prefix with one better-sqlite3 12.x, and runs demo', () => {
    const prefix = join(tmp.home, 'prefix');
    const prebuilds = join(tmp.home, 'prebuilds');
    mkdirSync(prebuilds);
    const sqlite = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8')) as { version: string };
    const name = `better-sqlite3-v${sqlite.version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
    const made = sh('tar', ['czf', join(prebuilds, name), 'build/Release/better_sqlite3.node'], { cwd: join(ROOT, 'node_modules', 'better-sqlite3') });
    expect(made.code, made.stderr).toBe(0);

    const env = cleanNpmEnv({ npm_config_better_sqlite3_local_prebuilds: prebuilds });
    const installed = sh('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { env, timeout: 280_000 });
    expect(installed.code, installed.stderr).toBe(0);

    const root = join(prefix, 'lib', 'node_modules', pkg.name);
    const copies = copiesOf(root, 'better-sqlite3');
    expect(copies).toHaveLength(1);
    expect(copies[0]).toMatch(/^12\./);
    expect(existsSync(join(root, 'src')) || existsSync(join(root, 'test'))).toBe(false);

    const bin = join(prefix, 'bin', 'companyctl');
    expect(statSync(bin).isFile() || statSync(bin).isSymbolicLink()).toBe(true);
    const home = join(tmp.home, 'home');
    const version = sh(bin, ['--version'], { env: cleanNpmEnv({ COMPANYCTL_HOME: home }) });
    expect(version.stdout.trim()).toBe(pkg.version);
    const demo = sh(bin, ['demo'], { env: cleanNpmEnv({ COMPANYCTL_HOME: home }), timeout: 120_000 });
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toMatch(/Acme|GmbH|Ltd|Inc/);
  }, 300_000);
});
