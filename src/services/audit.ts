// The audit trail: what each event writes to the audit log (one line per change; imports one
// per job and per failed chunk, or per row when their event carries rows), how a batch is
// appended (chained in the store, copied to this host's file), and the queries `companyctl
// audit`, `audit verify` and `audit stats` run over the store's trail.
import { mkdirSync, renameSync } from 'node:fs';
import { basename, join } from 'node:path';
import { checkLine, formatLine, GENESIS, type AuditEntry, type AuditLine, type AuditLog } from '../infra/audit-log.js';
import * as as from '../infra/db/audit-store.js';
import type { OutboxEvent } from '../infra/db/events-store.js';
import type { Store } from '../infra/db/store.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function targetOf(e: OutboxEvent, p: Obj): string | null {
  if (e.companyId !== null) return `company:${e.companyId}`;
  if (typeof p.target === 'string') return p.target;
  if (e.type.startsWith('import.') && p.jobId !== undefined && p.jobId !== null) return `import:${p.jobId}`;
  if (e.type.startsWith('alert.') && typeof p.alert === 'string') return `alert:${p.alert}`;
  return null;
}

/** Changed fields only: { field: { from, to } }. */
export function diffOf(before: Obj, after: Obj): Record<string, { from: unknown; to: unknown }> {
  const out: Record<string, { from: unknown; to: unknown }> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (k === 'version' || k === 'updatedAt') continue;
    const a = before[k] ?? null;
    const b = after[k] ?? null;
    if (JSON.stringify(a) !== JSON.stringify(b)) out[k] = { from: a, to: b };
  }
  return out;
}

/** The audit lines one event stands for. */
export function auditEntriesFor(e: OutboxEvent): AuditEntry[] {
  const p = e.payload ?? {};
  const base = { time: e.createdAt, actor: e.actor, role: e.role, action: e.type, target: targetOf(e, p), eventId: e.id, command: e.command };
  // An import with --audit-rows carries its rows: one line each (same event id, so a redelivery
  // is recognised as a whole).
  if (Array.isArray(p.rows)) {
    const { rows, ...rest } = p;
    return [
      { ...base, data: rest },
      ...rows.filter(isObj).map((r) => ({
        ...base,
        action: typeof r.action === 'string' ? r.action : `${e.type}.row`,
        target: typeof r.target === 'string' ? r.target : r.companyId !== undefined ? `company:${r.companyId}` : base.target,
        ...changeOf(r.before, r.after, typeof r.action === 'string' ? r.action : ''),
      })),
    ];
  }
  if ('before' in p || 'after' in p) {
    const { before, after, ...rest } = p;
    return [{ ...base, ...changeOf(before, after, e.type), ...(Object.keys(rest).length ? { data: rest } : {}) }];
  }
  return [{ ...base, data: p }];
}

function changeOf(before: unknown, after: unknown, action: string): Pick<AuditEntry, 'before' | 'after' | 'diff'> {
  if (isObj(before) && isObj(after) && !action.endsWith('.created')) return { diff: diffOf(before, after) };
  const out: Pick<AuditEntry, 'before' | 'after' | 'diff'> = {};
  if (before !== undefined && before !== null) out.before = before;
  if (after !== undefined && after !== null) out.after = after;
  return out;
}

// ---- appending ----

/**
 * Append entries to the trail: in one store transaction, chain them after the store's head
 * (locked, so hosts never fork the chain), insert them, and copy the lines to this host's file
 * (a failed file write rolls the store back). Entries of events in `redelivered` that the
 * trail already holds are skipped.
 */
export async function appendToTrail(store: Store, log: AuditLog, entries: AuditEntry[], opts: { now: string; redelivered?: number[] }): Promise<number> {
  if (entries.length === 0) return 0;
  return store.transaction(async (tx) => {
    let head = await as.lockHead(tx);
    if (!(await as.findAnchor(tx.read, log.id))) {
      // What the file held before the store kept the trail: anchored by count and last hash.
      const st = log.state();
      await as.insertAnchor(tx, { logId: log.id, legacyLines: st.lines, legacyHash: st.lastHash }, opts.now);
    }
    const written = opts.redelivered?.length ? await as.eventIdsWritten(tx.read, opts.redelivered) : new Set<number>();
    const rows: as.StoredAuditEntry[] = [];
    for (const e of entries) {
      if (e.eventId !== null && written.has(e.eventId)) continue;
      const l = formatLine(head.seq + 1, head.hash, e);
      rows.push({ seq: l.seq, time: e.time, actor: e.actor, action: e.action, target: e.target, eventId: e.eventId, logId: log.id, line: l.text, hash: l.hash });
      head = { seq: l.seq, hash: l.hash };
    }
    if (rows.length === 0) return 0;
    await as.insertEntries(tx, rows);
    await as.setHead(tx, head);
    log.appendLines(rows.map((r) => r.line));
    return rows.length;
  });
}

// ---- queries ----

export interface AuditFilter {
  actor?: string;
  action?: string;
  target?: string;
  since?: Date;
  until?: Date;
  limit?: number;
}

const storeFilter = (f: AuditFilter): as.EntryFilter & { limit?: number } => ({
  actor: f.actor,
  action: f.action,
  target: f.target,
  since: f.since?.toISOString(),
  until: f.until?.toISOString(),
  limit: f.limit,
});

/** Matching lines of the whole trail (every host), oldest first; with a limit, the newest `limit`. */
export async function queryAudit(store: Store, f: AuditFilter): Promise<AuditLine[]> {
  return (await as.queryEntries(store.read, storeFilter(f))).map((l) => JSON.parse(l) as AuditLine);
}

export interface AuditStats {
  lines: number;
  first: string | null;
  last: string | null;
  byActor: Record<string, number>;
  byAction: Record<string, number>;
  byDay: Record<string, number>;
}

export async function auditStats(store: Store, f: AuditFilter = {}): Promise<AuditStats> {
  return as.entryCounts(store.read, storeFilter(f));
}

// ---- verify ----

export type TrailVerify =
  | { ok: true; entries: number; head: { seq: number; hash: string }; log: { id: string; files: string[]; lines: number; anchored: boolean; legacyLines: number } }
  | { ok: false; where: 'store' | 'file'; file: string; line: number; seq: number | null; reason: string; verified: number };

/**
 * The store's chain (every entry's hash, links and the head), then this host's file against
 * the store: its lines from before the trail by count and last hash, every later line equal to
 * the store's entry of this log, and none missing or extra. The first bad line is named.
 */
export async function verifyTrail(store: Store, log: AuditLog): Promise<TrailVerify> {
  const read = store.read;
  let prev = { seq: 0, hash: GENESIS };
  let n = 0;
  for await (const e of as.entriesInOrder(read)) {
    const bad = (reason: string): TrailVerify => ({ ok: false, where: 'store', file: 'store:audit_entry', line: n + 1, seq: e.seq, reason, verified: n });
    const c = checkLine(e.line);
    if (!c || !c.valid || c.hash !== e.hash) return bad(`the store's entry seq ${e.seq} does not match its hash (it was changed)`);
    const rec = JSON.parse(c.body) as { seq?: number; prev?: string };
    if (rec.seq !== e.seq || e.seq !== prev.seq + 1 || rec.prev !== prev.hash) return bad(`the store's entry seq ${e.seq} does not follow seq ${prev.seq} (entries were removed or changed)`);
    prev = { seq: e.seq, hash: e.hash };
    n++;
  }
  const head = await as.readHead(read);
  if (head.seq !== prev.seq || head.hash !== prev.hash) {
    return { ok: false, where: 'store', file: 'store:audit_entry', line: n + 1, seq: head.seq, reason: `the store's chain ends at seq ${prev.seq} but its head is seq ${head.seq} (entries were removed)`, verified: n };
  }
  const file = await verifyFile(read, log);
  if (!file.ok) return { ...file, verified: n };
  return { ok: true, entries: n, head, log: file.log };
}

type FileVerify = { ok: true; log: Extract<TrailVerify, { ok: true }>['log'] } | Omit<Extract<TrailVerify, { ok: false }>, 'verified'>;

async function verifyFile(read: Store['read'], log: AuditLog): Promise<FileVerify> {
  const files = log.files();
  const anchor = await as.findAnchor(read, log.id);
  const lines = log.lines();
  let last: { file: string; line: number } = { file: files.at(-1) ?? log.current, line: 0 };
  const fail = (at: { file: string; line: number }, reason: string, seq: number | null = null): FileVerify => ({ ok: false, where: 'file', file: at.file, line: at.line, seq, reason });
  let count = 0;
  const next = () => {
    const r = lines.next();
    if (r.done) return undefined;
    count++;
    last = { file: r.value.file, line: r.value.line };
    return r.value;
  };
  if (!anchor) {
    // This host never wrote to the store's trail: its file can only be checked as a chain.
    const r = log.verify();
    if (!r.ok) return fail({ file: r.file, line: r.line }, r.reason, r.seq);
    return { ok: true, log: { id: log.id, files, lines: r.lines, anchored: false, legacyLines: r.lines } };
  }
  // Whole rotated files removed from the start (retention): match from the first line kept.
  const pruned = files.length > 0 && /\.log\.(\d+)$/.exec(files[0]!) !== null && !files[0]!.endsWith('.log.1');
  let pending: ReturnType<typeof next>;
  if (!pruned) {
    let prevHash = GENESIS;
    for (let i = 0; i < anchor.legacyLines; i++) {
      const l = next();
      if (!l) return fail({ file: last.file, line: last.line + 1 }, `the log has ${count} lines where it held ${anchor.legacyLines} before the store kept the trail (it was cut short, emptied or deleted)`);
      const c = checkLine(l.text);
      if (!c || !c.valid) return fail(l, 'its hash does not match its content (the line was changed)');
      if ((JSON.parse(c.body) as { prev?: string }).prev !== prevHash && i > 0) return fail(l, 'it does not follow the line before (a line was removed, inserted or moved)');
      prevHash = c.hash;
    }
    if (anchor.legacyLines > 0 && prevHash !== anchor.legacyHash) return fail(last, 'the lines written before the store kept the trail were rewritten (their last hash differs from the store\'s anchor)');
  } else {
    pending = next();
  }
  const entries = as.entriesInOrder(read, { logId: log.id });
  let skipping = pruned;
  for await (const e of entries) {
    let l = pending ?? next();
    pending = undefined;
    if (skipping) {
      // Entries whose lines were in the removed files.
      if (l && l.text !== e.line) {
        pending = l;
        continue;
      }
      skipping = false;
    }
    if (!l) {
      return fail(
        { file: last.line === 0 ? log.current : last.file, line: last.line + 1 },
        `the store holds seq ${e.seq} for this log after its last line: the log was cut short, emptied, deleted or replaced by an older copy`,
        e.seq,
      );
    }
    if (l.text !== e.line) {
      const c = checkLine(l.text);
      const seq = c ? ((JSON.parse(c.body) as { seq?: number }).seq ?? null) : null;
      if (!c) return fail(l, 'not an audit line (no hash at its end)');
      if (!c.valid) return fail(l, 'its hash does not match its content (the line was changed)', seq);
      return fail(l, `it differs from the store's entry seq ${e.seq} of this log (the line was rewritten, inserted or removed)`, seq);
    }
    l = undefined;
  }
  const extra = pending ?? next();
  if (extra) {
    const c = checkLine(extra.text);
    return fail(extra, 'the store has no such entry for this log (a line was added to the file)', c ? ((JSON.parse(c.body) as { seq?: number }).seq ?? null) : null);
  }
  return { ok: true, log: { id: log.id, files, lines: count, anchored: true, legacyLines: anchor.legacyLines } };
}

/**
 * After a restore the store's trail is the backup's: this host's files may hold lines it no
 * longer has. Move them to a folder beside them and write the trail's own copy of this log
 * (with the lines from before the trail it anchors). Returns the folder, if anything moved.
 */
export async function rebuildLocalLog(store: Store, log: AuditLog, now: Date): Promise<string | undefined> {
  const files = log.files();
  if (files.length === 0) return undefined;
  const anchor = await as.findAnchor(store.read, log.id);
  const legacy: string[] = [];
  if (anchor) {
    for (const l of log.lines()) {
      if (legacy.length >= anchor.legacyLines) break;
      legacy.push(l.text);
    }
  }
  const aside = join(log.dir, `audit-before-restore-${now.toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(aside, { mode: 0o700 });
  for (const f of files) renameSync(f, join(aside, basename(f)));
  log.appendLines(legacy);
  let batch: string[] = [];
  for await (const e of as.entriesInOrder(store.read, { logId: log.id })) {
    batch.push(e.line);
    if (batch.length >= 5000) log.appendLines(batch), (batch = []);
  }
  log.appendLines(batch);
  return aside;
}
