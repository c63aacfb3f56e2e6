// Metrics on disk: the counters in <state>/metrics.json (read-modify-write under a lock, so
// concurrent commands never lose a count) and the Prometheus text file rendered from them,
// replaced atomically (temp file + rename in the same folder) as node_exporter's textfile
// collector requires.
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { withFileLock } from './file-lock.js';
import { ensurePrivateDir } from './paths.js';

export function metricsStateFile(stateDir: string): string {
  return join(stateDir, 'metrics.json');
}

export function defaultPromFile(stateDir: string): string {
  return join(stateDir, 'companyctl.prom');
}

// ---- the command log: one line per command, appended without a lock (O_APPEND writes of a
// short line do not interleave), folded into the state by the next full update ----

const COMMAND_LOG = 'commands.log';
const ROTATE_AT = 4 * 1024 * 1024;

/** Append `command<TAB>exit<TAB>seconds`; cheap enough for every command, reads included. */
export function appendCommandLine(stateDir: string, command: string, exitCode: number, seconds: number): void {
  const line = `${command.replace(/[\t\n]/g, ' ')}\t${exitCode}\t${seconds.toFixed(4)}\n`;
  const file = join(stateDir, COMMAND_LOG);
  try {
    appendFileSync(file, line, { mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    ensurePrivateDir(stateDir);
    appendFileSync(file, line, { mode: 0o600 });
  }
}

/** Whether `file` was written within `maxAgeMs` (a missing file is not fresh). */
export function isFresh(file: string, maxAgeMs: number, now = Date.now()): boolean {
  try {
    return now - statSync(file).mtimeMs < maxAgeMs;
  } catch {
    return false;
  }
}

/**
 * Under the state lock: the command-log lines after `offset`, and the offset to store next.
 * A log past 4 MiB is rotated (renamed, its rest read) so it never grows without bound.
 */
export function readCommandLines(stateDir: string, offset: number): { lines: [string, number, number][]; offset: number } {
  const file = join(stateDir, COMMAND_LOG);
  const read = (path: string, from: number): { text: string; end: number } => {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return { text: '', end: 0 };
    }
    try {
      const size = fstatSync(fd).size;
      const start = from <= size ? from : 0;
      const buf = Buffer.alloc(size - start);
      readSync(fd, buf, 0, buf.length, start);
      const text = buf.toString('utf8');
      const whole = text.slice(0, text.lastIndexOf('\n') + 1);
      return { text: whole, end: start + Buffer.byteLength(whole) };
    } finally {
      closeSync(fd);
    }
  };
  let { text, end } = read(file, offset);
  if (end > ROTATE_AT) {
    renameSync(file, `${file}.1`);
    // Lines appended between the read and the rename are still in the renamed file.
    text += read(`${file}.1`, end).text;
    end = 0;
  }
  const lines: [string, number, number][] = [];
  for (const l of text.split('\n')) {
    const [cmd, code, secs] = l.split('\t');
    if (cmd && code !== undefined && secs !== undefined) lines.push([cmd, Number(code), Number(secs)]);
  }
  return { lines, offset: end };
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
