#!/usr/bin/env node
// Runs the compiled entry point: shipped in the package, or made by `npm run build` (run by `npm ci`).
import('../dist/src/cli.js').then((cli) => cli.main(process.argv)).catch((err) => {
  const source = !import.meta.url.includes('/node_modules/');
  const hint = source ? 'in a clone, run "npm ci" (it builds dist/)' : 'reinstall companyctl: its files are incomplete';
  process.stderr.write(`companyctl: could not start: ${err?.message ?? err}\nhint: ${hint}\n`);
  process.exitCode = 1;
});
