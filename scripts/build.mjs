// The build: type-check with tsc (npm run build runs it first), then bundle with esbuild.
// Our code and the two small pure-JS packages on every command's path (commander, jose) are
// bundled: fewer files to resolve and load at start-up. Everything else stays in node_modules
// (native addons, packages that load files of their own, and what only some commands need).
import { build } from 'esbuild';

const bundled = new Set(['commander', 'jose']);
const pkg = JSON.parse(await (await import('node:fs/promises')).readFile(new URL('../package.json', import.meta.url), 'utf8'));
const external = Object.keys(pkg.dependencies).filter((d) => !bundled.has(d));

await build({
  entryPoints: { cli: 'src/cli.ts', 'import-worker': 'src/services/import/reader-worker.ts' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: 'dist/src',
  external: [...external, ...external.map((d) => `${d}/*`)],
  // commander is CommonJS: give the ESM bundle a require() for it.
  banner: { js: "import { createRequire as __companyctlRequire } from 'node:module'; const require = __companyctlRequire(import.meta.url);" },
  logLevel: 'warning',
});
