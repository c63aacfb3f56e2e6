// The audit trail: what each event writes to the audit log (one line per change; imports one
// per job and per failed chunk, or per row when their event carries rows), and the queries
// `companyctl audit`, `audit verify` and `audit stats` run over the log.
import type { AuditEntry, AuditLine, AuditLog, VerifyResult } from '../infra/audit-log.js';
import type { OutboxEvent } from '../infra/db/events-store.js';

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

// ---- queries ----

export interface AuditFilter {
  actor?: string;
  action?: string;
  target?: string;
  since?: Date;
  until?: Date;
  limit?: number;
}

/** `action` matches exactly or by prefix with a trailing `*` or `.` (`company.*`, `import.`). */
function actionMatches(action: string, want: string): boolean {
  if (want.endsWith('*')) return action.startsWith(want.slice(0, -1));
  if (want.endsWith('.')) return action.startsWith(want);
  return action === want;
}

export function matches(l: AuditLine, f: AuditFilter): boolean {
  if (f.actor && l.actor !== f.actor && !l.actor.startsWith(`${f.actor} (`)) return false;
  if (f.action && !actionMatches(l.action, f.action)) return false;
  if (f.target && l.target !== f.target && l.target !== `company:${f.target}`) return false;
  const t = Date.parse(l.time);
  if (f.since && t < f.since.getTime()) return false;
  if (f.until && t >= f.until.getTime()) return false;
  return true;
}

/** Matching lines, oldest first; with a limit, the newest `limit` of them. */
export function queryAudit(log: AuditLog, f: AuditFilter): AuditLine[] {
  const out: AuditLine[] = [];
  for (const l of log.entries()) {
    if (!matches(l, f)) continue;
    out.push(l);
    if (f.limit !== undefined && out.length > f.limit) out.shift();
  }
  return out;
}

export interface AuditStats {
  lines: number;
  first: string | null;
  last: string | null;
  byActor: Record<string, number>;
  byAction: Record<string, number>;
  byDay: Record<string, number>;
}

export function auditStats(log: AuditLog, f: AuditFilter = {}): AuditStats {
  const s: AuditStats = { lines: 0, first: null, last: null, byActor: {}, byAction: {}, byDay: {} };
  for (const l of log.entries()) {
    if (!matches(l, f)) continue;
    s.lines++;
    s.first ??= l.time;
    s.last = l.time;
    s.byActor[l.actor] = (s.byActor[l.actor] ?? 0) + 1;
    s.byAction[l.action] = (s.byAction[l.action] ?? 0) + 1;
    const day = l.time.slice(0, 10);
    s.byDay[day] = (s.byDay[day] ?? 0) + 1;
  }
  return s;
}

export function verifyAudit(log: AuditLog): VerifyResult {
  return log.verify();
}
