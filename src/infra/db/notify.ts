// Announcements to the workers of every host, sent inside the writing transaction: PostgreSQL
// delivers a NOTIFY at commit (and never for a rollback), so a worker never hears of a change
// before it can read it. SQLite has no NOTIFY: its workers poll.
import { runSql, type StoreTx } from './store.js';

/** New outbox events, and which companies changed ('all': too many to name, e.g. an import chunk). */
export const CHANGES_CHANNEL = 'companyctl_changes';
/** A queued job is ready to be claimed. */
export const JOBS_CHANNEL = 'companyctl_jobs';

export interface Change {
  events?: boolean;
  companies?: number[] | 'all';
}

// A NOTIFY payload must stay under 8000 bytes: past this many ids, say 'all'.
const MAX_IDS = 500;

export function encodeChange(c: Change): string {
  const companies = Array.isArray(c.companies) && c.companies.length > MAX_IDS ? 'all' : c.companies;
  return JSON.stringify({ ...(c.events ? { e: 1 } : {}), ...(companies ? { c: companies } : {}) });
}

/** A payload from the changes channel; unknown shapes read as "something changed, names unknown". */
export function decodeChange(payload: string | undefined): Change {
  try {
    const p = JSON.parse(payload ?? '') as { e?: unknown; c?: unknown };
    const companies = p.c === 'all' ? 'all' : Array.isArray(p.c) ? p.c.filter((x): x is number => Number.isInteger(x)) : undefined;
    return { events: !!p.e, companies };
  } catch {
    return { events: true, companies: 'all' };
  }
}

export async function announce(tx: StoreTx, change: Change): Promise<void> {
  if (tx.dialect !== 'postgresql') return;
  await runSql(tx, 'select pg_notify(?, ?)', [CHANGES_CHANNEL, encodeChange(change)]);
}

export async function announceJob(tx: StoreTx, jobId: number): Promise<void> {
  if (tx.dialect !== 'postgresql') return;
  await runSql(tx, 'select pg_notify(?, ?)', [JOBS_CHANNEL, String(jobId)]);
}
