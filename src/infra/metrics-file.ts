// Metrics on disk: the counters in <state>/metrics.json (read-modify-write under a lock, so
// concurrent commands never lose a count) and the Prometheus text file rendered from them,
// replaced atomically (temp file + rename in the same folder) as node_exporter's textfile
// collector requires.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { withFileLock } from './file-lock.js';
import { ensurePrivateDir } from './paths.js';

export function metricsStateFile(stateDir: string): string {
  return join(stateDir, 'metrics.json');
}

export function defaultPromFile(stateDir: string): string {
  return join(stateDir, 'companyctl.prom');
}

/**
 * Read the state, let `mutate` change it, write it back, then `after` (e.g. render the text
 * file): all under the state folder's lock, so the newest state is also the newest text file.
 */
export function updateState<S>(stateDir: string, empty: () => S, mutate: (s: S) => void, after?: (s: S) => void): S {
  ensurePrivateDir(stateDir);
  const file = metricsStateFile(stateDir);
  return withFileLock(`${file}.lock`, () => {
    const s = readState(stateDir, empty);
    mutate(s);
    writeAtomic(file, `${JSON.stringify(s)}\n`, 0o600);
    after?.(s);
    return s;
  });
}

export function readState<S>(stateDir: string, empty: () => S): S {
  try {
    return { ...empty(), ...(JSON.parse(readFileSync(metricsStateFile(stateDir), 'utf8')) as S) };
  } catch {
    return empty();
  }
}

/** Replace a file atomically: readers see the old or the new text, never a mix. */
export function writeAtomic(file: string, text: string, mode = 0o644): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${process.pid}.${Date.now()}.tmp`);
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

// ---- Prometheus text exposition format 0.0.4 ----

export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'untyped';
  samples: Sample[];
}

const escapeHelp = (s: string) => s.replaceAll('\\', '\\\\').replaceAll('\n', '\\n');
const escapeLabel = (s: string) => s.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export function renderPrometheus(families: MetricFamily[]): string {
  let out = '';
  for (const f of families) {
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) {
      const labels = Object.entries(s.labels ?? {});
      const l = labels.length ? `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
      out += `${f.name}${l} ${formatValue(s.value)}\n`;
    }
  }
  return out;
}
