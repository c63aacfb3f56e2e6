#!/usr/bin/env node
// Runs the compiled entry point; `npm run build` (run by `npm ci`) produces it.
import('../dist/src/cli.js').then((cli) => cli.main(process.argv)).catch((err) => {
  process.stderr.write(`companyctl: could not start: ${err?.message ?? err}\nhint: run "npm run build" in the companyctl folder\n`);
  process.exitCode = 1;
});
