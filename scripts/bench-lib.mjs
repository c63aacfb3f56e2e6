// What the benchmark scripts share: a throw-away PostgreSQL database, and a TypeScript workload
// bundled against src/ with esbuild and imported in-process.
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A fresh, empty database on the server at `url` (an old one of the same name is dropped first). */
export async function benchDatabase(url, name = `companyctl_bench_${process.pid}_${Math.floor(Math.random() * 1e9)}`) {
  const { default: pg } = await import('pg');
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(url);
  u.pathname = `/${name}`;
  return {
    url: u.href,
    drop: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** Bundle a TypeScript workload (`source`, importing './src/...') and import it. */
export async function loadWorkload(source, name) {
  const out = join(ROOT, '.bench', `${name}-workload-${process.pid}.mjs`);
  mkdirSync(dirname(out), { recursive: true });
  await build({
    stdin: { contents: source, resolveDir: ROOT, loader: 'ts', sourcefile: `bench-${name}-workload.ts` },
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outfile: out,
    logLevel: 'warning',
  });
  try {
    return await import(pathToFileURL(out).href);
  } finally {
    rmSync(out, { force: true });
  }
}
