// The audit log: one JSON line per change, append-only, hash-chained with SHA-256, 0600 in the
// 0700 state folder. Each line ends with `"prev":<hash of the line before>,"hash":<hash>`, where
// hash = sha256 of the line's own text up to `,"hash"` (closed with `}`), so a changed byte, a
// deleted line or two swapped lines break the chain at that line. Rotation by size renames the
// current file to audit.log.<n> (n = 1, 2, ... oldest first, never renamed again); the next line
// still chains to the last line of the rotated file.
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { withFileLock } from './file-lock.js';
import { ensurePrivateDir } from './paths.js';

export const GENESIS = '0'.repeat(64);
const CURRENT = 'audit.log';
const HASH_TAIL = /,"hash":"([0-9a-f]{64})"\}$/;

/** What a caller gives for one line; seq, prev and hash are added here. */
export interface AuditEntry {
  time: string;
  actor: string;
  role: string | null;
  action: string;
  target: string | null;
  eventId: number | null;
  command: string | null;
  before?: unknown;
  after?: unknown;
  diff?: Record<string, { from: unknown; to: unknown }>;
  data?: Record<string, unknown>;
}

export interface AuditLine extends AuditEntry {
  seq: number;
  prev: string;
  hash: string;
}

export interface AuditFileLine {
  file: string;
  line: number;
  text: string;
}

export type VerifyResult =
  | { ok: true; files: string[]; lines: number; firstSeq: number | null; lastHash: string }
  | { ok: false; files: string[]; lines: number; file: string; line: number; seq: number | null; reason: string };

/** One chained line: hash = sha256 of the JSON up to `,"hash"` closed with `}`. */
export function formatLine(seq: number, prev: string, e: AuditEntry): AuditLine & { text: string } {
  const body = JSON.stringify({ seq, ...e, prev });
  const hash = sha256(body);
  return { ...e, seq, prev, hash, text: `${body.slice(0, -1)},"hash":"${hash}"}` };
}

/** The hash a line claims, and whether its content matches it. */
export function checkLine(text: string): { hash: string; body: string; valid: boolean } | undefined {
  const m = HASH_TAIL.exec(text);
  if (!m) return undefined;
  const body = `${text.slice(0, m.index)}}`;
  return { hash: m[1]!, body, valid: sha256(body) === m[1] };
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class AuditLog {
  readonly current: string;
  /** This host's log among all hosts writing to one store: host name and folder. */
  readonly id: string;

  constructor(
    readonly dir: string,
    private readonly maxBytes = 10 * 1024 * 1024,
  ) {
    this.current = join(dir, CURRENT);
    this.id = `${hostname()}:${resolve(dir)}`;
  }

  /** The log's files, oldest first: rotated ones by number, then the current one. */
  files(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const rotated = names
      .map((n) => /^audit\.log\.(\d+)$/.exec(n))
      .filter((m): m is RegExpExecArray => !!m)
      .sort((a, b) => Number(a[1]) - Number(b[1]))
      .map((m) => join(this.dir, m[0]));
    return existsSync(this.current) ? [...rotated, this.current] : rotated;
  }

  /**
   * Append lines for the entries, chained to the file's own last line (one lock, one write, one
   * fdatasync). The store-backed trail uses appendLines with lines the store chained.
   */
  append(entries: AuditEntry[]): AuditLine[] {
    if (entries.length === 0) return [];
    let out: (AuditLine & { text: string })[] = [];
    this.write((tail) => {
      let last = tail ? parseTail(tail) : this.lastOfRotated();
      out = entries.map((e) => {
        const line = formatLine(last.seq + 1, last.hash, e);
        last = { seq: line.seq, hash: line.hash };
        return line;
      });
      return out.map((l) => l.text);
    });
    return out.map(({ text: _t, ...l }) => l);
  }

  /**
   * Append lines as they are (already chained by the store). Lines equal to the file's last
   * line or before it in `texts` are skipped: a repeat after a crash before the store's commit.
   */
  appendLines(texts: string[]): void {
    if (texts.length === 0) return;
    this.write((tail) => {
      const k = tail === null ? -1 : texts.lastIndexOf(tail);
      return texts.slice(k + 1);
    });
  }

  /** Under the file lock: cut a crash's partial tail, then write what `linesAfter` gives for the last line. */
  private write(linesAfter: (tail: string | null) => string[]): void {
    ensurePrivateDir(this.dir);
    withFileLock(join(this.dir, 'audit.lock'), () => {
      const fd = openSync(this.current, 'a+', 0o600);
      let closed = false;
      try {
        let size = fstatSync(fd).size;
        let tail = lastLine(fd, size);
        if (tail.partial) {
          // A write cut short by a crash was never acknowledged; its event will be delivered again.
          ftruncateSync(fd, tail.end);
          size = tail.end;
          tail = lastLine(fd, size);
        }
        const lines = linesAfter(tail.text);
        if (lines.length === 0) return;
        const text = lines.map((l) => `${l}\n`).join('');
        let target = fd;
        if (size > 0 && size + Buffer.byteLength(text) > this.maxBytes) {
          closeSync(fd);
          closed = true;
          renameSync(this.current, join(this.dir, `audit.log.${this.nextRotation()}`));
          target = openSync(this.current, 'a', 0o600);
        }
        try {
          writeSync(target, text);
          fdatasyncSync(target);
        } finally {
          if (target !== fd) closeSync(target);
        }
      } finally {
        if (!closed) closeSync(fd);
      }
    });
  }

  /** How many whole lines the log holds now and the hash of the last (for anchoring it in the store). */
  state(): { lines: number; lastHash: string } {
    let lines = 0;
    let lastHash = GENESIS;
    for (const l of this.lines()) {
      lines++;
      lastHash = HASH_TAIL.exec(l.text)?.[1] ?? sha256(l.text);
    }
    return { lines, lastHash };
  }

  /** Every line of every file, oldest first. */
  *lines(): Generator<AuditFileLine> {
    for (const file of this.files()) {
      const text = readFileSync(file, 'utf8');
      let n = 0;
      for (const line of text.split('\n')) {
        n++;
        if (line === '') continue;
        yield { file, line: n, text: line };
      }
    }
  }

  /** Parsed entries, oldest first; unparsable lines are skipped (verify names them). */
  *entries(): Generator<AuditLine> {
    for (const l of this.lines()) {
      try {
        yield JSON.parse(l.text) as AuditLine;
      } catch {
        // broken line: `audit verify` reports it
      }
    }
  }

  /** The event ids already written among `ids` (for redelivered events). */
  written(ids: Iterable<number>): Set<number> {
    const want = new Set(ids);
    const found = new Set<number>();
    if (want.size === 0) return found;
    for (const l of this.lines()) {
      const m = /"eventId":(\d+)/.exec(l.text);
      if (m && want.has(Number(m[1]))) found.add(Number(m[1]));
    }
    return found;
  }

  /** Recompute the chain; the first line that does not fit is named. */
  verify(): VerifyResult {
    const files = this.files();
    let prev: { seq: number; hash: string } | undefined;
    let count = 0;
    let firstSeq: number | null = null;
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      const rows = text.split('\n');
      if (rows[rows.length - 1] === '') rows.pop();
      for (let i = 0; i < rows.length; i++) {
        const line = rows[i]!;
        const fail = (reason: string, seq: number | null = null): VerifyResult => ({ ok: false, files, lines: count, file, line: i + 1, seq, reason });
        const m = HASH_TAIL.exec(line);
        if (!m) return fail('not an audit line (no hash at its end)');
        const body = `${line.slice(0, m.index)}}`;
        let rec: { seq?: unknown; prev?: unknown };
        try {
          rec = JSON.parse(body) as typeof rec;
        } catch {
          return fail('not valid JSON');
        }
        const seq = typeof rec.seq === 'number' ? rec.seq : null;
        if (sha256(body) !== m[1]) return fail('its hash does not match its content (the line was changed)', seq);
        if (prev) {
          if (rec.prev !== prev.hash) return fail(`it does not follow line seq ${prev.seq} (a line was removed, inserted or moved)`, seq);
          if (seq !== prev.seq + 1) return fail(`its seq is ${seq}, expected ${prev.seq + 1}`, seq);
        } else if (rec.prev !== GENESIS || seq !== 1) {
          // Only removing whole rotated files (oldest first) may shorten the log's start.
          const pruned = /\.log\.(\d+)$/.exec(file);
          if (!pruned || Number(pruned[1]) === 1 || rec.prev === GENESIS) {
            return fail(`the log starts at seq ${seq} without the chain's first line (lines were removed)`, seq);
          }
        }
        firstSeq ??= seq;
        prev = { seq: seq ?? 0, hash: m[1]! };
        count++;
      }
    }
    return { ok: true, files, lines: count, firstSeq, lastHash: prev?.hash ?? GENESIS };
  }

  private lastOfRotated(): { seq: number; hash: string } {
    const rotated = this.files().filter((f) => f !== this.current);
    const newest = rotated[rotated.length - 1];
    if (!newest) return { seq: 0, hash: GENESIS };
    const fd = openSync(newest, 'r');
    try {
      const t = lastLine(fd, fstatSync(fd).size);
      return t.text ? parseTail(t.text) : { seq: 0, hash: GENESIS };
    } finally {
      closeSync(fd);
    }
  }

  private nextRotation(): number {
    const nums = this.files()
      .map((f) => /\.(\d+)$/.exec(f)?.[1])
      .filter((n): n is string => !!n)
      .map(Number);
    return nums.length === 0 ? 1 : Math.max(...nums) + 1;
  }
}

function parseTail(text: string): { seq: number; hash: string } {
  const m = HASH_TAIL.exec(text);
  const seq = /^\{"seq":(\d+)/.exec(text);
  // A tail that is not ours still chains: the next line points at the hash of its text.
  return { seq: seq ? Number(seq[1]) : 0, hash: m ? m[1]! : sha256(text) };
}

/** The last complete line of a file (without its newline), or a partial tail after a crash. */
function lastLine(fd: number, size: number): { text: string | null; partial: boolean; end: number } {
  if (size === 0) return { text: null, partial: false, end: 0 };
  let chunk = 64 * 1024;
  for (;;) {
    const start = Math.max(0, size - chunk);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const s = buf.toString('utf8');
    const endsWithNewline = s.endsWith('\n');
    const body = endsWithNewline ? s.slice(0, -1) : s;
    const nl = body.lastIndexOf('\n');
    if (!endsWithNewline) {
      // Cut the partial line off: keep everything up to the last newline.
      const lastNl = s.lastIndexOf('\n');
      if (lastNl >= 0 || start === 0) return { text: null, partial: true, end: start + Buffer.byteLength(s.slice(0, lastNl + 1)) };
    } else if (nl >= 0 || start === 0) {
      return { text: body.slice(nl + 1), partial: false, end: size };
    }
    chunk *= 4;
  }
}

export function auditFileMode(file: string): number {
  return statSync(file).mode & 0o777;
}
