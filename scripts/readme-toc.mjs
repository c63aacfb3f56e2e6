// Rewrites the README's "## Contents" list from its ## and ### headings (GitHub's anchor rules).
// Run after adding or renaming a section: node scripts/readme-toc.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const file = join(import.meta.dirname, '..', 'README.md');
const text = readFileSync(file, 'utf8');
const lines = text.split('\n');
const start = lines.indexOf('## Contents');
if (start < 0) throw new Error('README.md has no "## Contents" heading');
let end = start + 1;
while (end < lines.length && !lines[end].startsWith('## ')) end++;

const anchor = (title) => title.toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
const seen = new Map();
const toc = [];
let fence = false;
for (const line of lines.slice(end)) {
  if (line.startsWith('```')) fence = !fence;
  const m = !fence && /^(##|###) (.+)$/.exec(line);
  if (!m) continue;
  const base = anchor(m[2]);
  const n = seen.get(base) ?? 0;
  seen.set(base, n + 1);
  toc.push(`${m[1] === '##' ? '' : '  '}- [${m[2]}](#${n ? `${base}-${n}` : base})`);
}
lines.splice(start + 1, end - start - 1, '', ...toc, '');
writeFileSync(file, lines.join('\n'));
console.log(`README.md: ${toc.length} entries in Contents`);
