// The audit trail in the store: entries (one chain for every host), the chain head (locked by
// each append, so two hosts never fork it) and the anchors of each host's log file.
import type { Dialect, SqlReader, StoreTx } from './store.js';

export interface StoredAuditEntry {
  seq: number;
  time: string;
  actor: string;
  action: string;
  target: string | null;
  eventId: number | null;
  logId: string;
  line: string;
  hash: string;
}

export interface LogAnchor {
  logId: string;
  legacyLines: number;
  legacyHash: string;
}

async function run(tx: StoreTx, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await tx.em.getConnection().execute(sql, params, 'all', tx.em.getTransactionContext())) as Record<string, unknown>[];
}

const marks = (n: number) => Array.from({ length: n }, () => '?').join(', ');
const forUpdate = (d: Dialect) => (d === 'postgresql' ? ' for update' : '');

/** The chain head, locked until the transaction ends (SQLite's write lock already serialises). */
export async function lockHead(tx: StoreTx): Promise<{ seq: number; hash: string }> {
  const rows = await run(tx, `select value from store_meta where key = 'audit_head'${forUpdate(tx.dialect)}`);
  const [seq, hash] = String(rows[0]?.value ?? '').split(':');
  if (!hash) throw new Error('store_meta has no audit_head (run "companyctl db migrate")');
  return { seq: Number(seq), hash };
}

export async function readHead(read: SqlReader): Promise<{ seq: number; hash: string }> {
  const rows = await read.all<{ value: string }>(`select value from store_meta where key = 'audit_head'`);
  const [seq, hash] = String(rows[0]?.value ?? '0:').split(':');
  return { seq: Number(seq), hash: hash ?? '' };
}

export async function setHead(tx: StoreTx, head: { seq: number; hash: string }): Promise<void> {
  await run(tx, `update store_meta set value = ? where key = 'audit_head'`, [`${head.seq}:${head.hash}`]);
}

/** Event ids among `ids` that already have entries (a redelivered event is written once). */
export async function eventIdsWritten(read: SqlReader, ids: number[]): Promise<Set<number>> {
  const out = new Set<number>();
  for (let i = 0; i < ids.length; i += 500) {
    const part = ids.slice(i, i + 500);
    for (const r of await read.all<{ event_id: unknown }>(`select distinct event_id from audit_entry where event_id in (${marks(part.length)})`, part)) {
      out.add(Number(r.event_id));
    }
  }
  return out;
}

export async function insertEntries(tx: StoreTx, rows: StoredAuditEntry[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 200) {
    const part = rows.slice(i, i + 200);
    await run(
      tx,
      `insert into audit_entry (seq, time, actor, action, target, event_id, log_id, line, hash) values ${part.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      part.flatMap((r) => [r.seq, r.time, r.actor, r.action, r.target, r.eventId, r.logId, r.line, r.hash]),
    );
  }
}

export async function findAnchor(read: SqlReader, logId: string): Promise<LogAnchor | undefined> {
  const r = (await read.all<Record<string, unknown>>('select log_id, legacy_lines, legacy_hash from audit_log_file where log_id = ?', [logId]))[0];
  return r && { logId: String(r.log_id), legacyLines: Number(r.legacy_lines), legacyHash: String(r.legacy_hash) };
}

export async function insertAnchor(tx: StoreTx, a: LogAnchor, now: string): Promise<void> {
  await run(tx, 'insert into audit_log_file (log_id, legacy_lines, legacy_hash, anchored_at) values (?, ?, ?, ?) on conflict (log_id) do nothing', [
    a.logId,
    a.legacyLines,
    a.legacyHash,
    now,
  ]);
}

function toEntry(r: Record<string, unknown>): StoredAuditEntry {
  return {
    seq: Number(r.seq),
    time: String(r.time),
    actor: String(r.actor),
    action: String(r.action),
    target: r.target == null ? null : String(r.target),
    eventId: r.event_id == null ? null : Number(r.event_id),
    logId: String(r.log_id),
    line: String(r.line),
    hash: String(r.hash),
  };
}

const COLUMNS = 'seq, time, actor, action, target, event_id, log_id, line, hash';

/** Every entry in seq order (of one log, or all), read in pages so memory stays flat. */
export async function* entriesInOrder(read: SqlReader, opts: { logId?: string; pageSize?: number } = {}): AsyncGenerator<StoredAuditEntry> {
  const page = opts.pageSize ?? 5000;
  let after = -1;
  for (;;) {
    const rows = opts.logId
      ? await read.all<Record<string, unknown>>(`select ${COLUMNS} from audit_entry where log_id = ? and seq > ? order by seq limit ?`, [opts.logId, after, page])
      : await read.all<Record<string, unknown>>(`select ${COLUMNS} from audit_entry where seq > ? order by seq limit ?`, [after, page]);
    for (const r of rows) yield toEntry(r);
    if (rows.length < page) return;
    after = Number(rows[rows.length - 1]!.seq);
  }
}

export interface EntryFilter {
  actor?: string;
  action?: string;
  target?: string;
  since?: string;
  until?: string;
}

function where(f: EntryFilter): { sql: string; params: unknown[] } {
  const conds: string[] = [];
  const params: unknown[] = [];
  if (f.actor) conds.push(`(actor = ? or substr(actor, 1, ?) = ?)`), params.push(f.actor, f.actor.length + 2, `${f.actor} (`);
  if (f.action) {
    const prefix = f.action.endsWith('*') ? f.action.slice(0, -1) : f.action.endsWith('.') ? f.action : undefined;
    if (prefix !== undefined) conds.push('substr(action, 1, ?) = ?'), params.push(prefix.length, prefix);
    else conds.push('action = ?'), params.push(f.action);
  }
  if (f.target) conds.push('(target = ? or target = ?)'), params.push(f.target, `company:${f.target}`);
  if (f.since) conds.push('time >= ?'), params.push(f.since);
  if (f.until) conds.push('time < ?'), params.push(f.until);
  return { sql: conds.length ? ` where ${conds.join(' and ')}` : '', params };
}

/** Matching entries' lines, oldest first; with a limit, the newest `limit` of them. */
export async function queryEntries(read: SqlReader, f: EntryFilter & { limit?: number }): Promise<string[]> {
  const w = where(f);
  if (f.limit !== undefined) {
    const rows = await read.all<{ line: string }>(`select line from audit_entry${w.sql} order by seq desc limit ?`, [...w.params, f.limit]);
    return rows.map((r) => r.line).reverse();
  }
  return (await read.all<{ line: string }>(`select line from audit_entry${w.sql} order by seq`, w.params)).map((r) => r.line);
}

export async function entryCounts(read: SqlReader, f: EntryFilter): Promise<{ lines: number; first: string | null; last: string | null; byActor: Record<string, number>; byAction: Record<string, number>; byDay: Record<string, number> }> {
  const w = where(f);
  const total = (await read.all<Record<string, unknown>>(`select count(*) as n, min(time) as first, max(time) as last from audit_entry${w.sql}`, w.params))[0]!;
  const by = async (expr: string, order: string) => {
    const out: Record<string, number> = {};
    for (const r of await read.all<{ k: string; n: unknown }>(`select ${expr} as k, count(*) as n from audit_entry${w.sql} group by ${expr} order by ${order}`, w.params)) {
      out[String(r.k)] = Number(r.n);
    }
    return out;
  };
  return {
    lines: Number(total.n),
    first: total.first == null ? null : String(total.first),
    last: total.last == null ? null : String(total.last),
    byActor: await by('actor', 'count(*) desc, actor'),
    byAction: await by('action', 'count(*) desc, action'),
    byDay: await by('substr(time, 1, 10)', 'substr(time, 1, 10)'),
  };
}

export async function countEntries(read: SqlReader, logId?: string): Promise<number> {
  const rows = logId
    ? await read.all<{ n: unknown }>('select count(*) as n from audit_entry where log_id = ?', [logId])
    : await read.all<{ n: unknown }>('select count(*) as n from audit_entry');
  return Number(rows[0]?.n ?? 0);
}

/** A typed name's login throttle (for the audit trail's lockout event). */
export async function throttleOf(read: SqlReader, username: string): Promise<{ failures: number; lockedUntil: string | null } | undefined> {
  const r = (await read.all<Record<string, unknown>>('select failures, locked_until from login_throttle where username = ?', [username]))[0];
  if (!r) return undefined;
  const at = r.locked_until;
  return { failures: Number(r.failures), lockedUntil: at == null ? null : at instanceof Date ? at.toISOString() : new Date(String(at)).toISOString() };
}
