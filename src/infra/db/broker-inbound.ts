// The inbound broker messages already applied (per queue and message id), and the company an
// external id names. Portable SQL with `?` placeholders.
import type { Company } from '../../domain/company.js';
import { findCompany } from './company-read.js';
import type { SqlReader, Store, StoreTx } from './store.js';

async function exec(tx: StoreTx, sql: string, params: unknown[]): Promise<number> {
  const r = (await tx.em.getConnection().execute(sql, params, 'run', tx.em.getTransactionContext())) as { affectedRows?: number; changes?: number; rowCount?: number };
  return Number(r?.affectedRows ?? r?.changes ?? r?.rowCount ?? 0);
}

const marks = (n: number) => Array.from({ length: n }, () => '?').join(', ');
const CHUNK = 500;

/** The ids among `ids` that this queue already applied. */
export async function appliedAmong(read: SqlReader, queue: string, ids: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < ids.length; i += CHUNK) {
    const part = ids.slice(i, i + CHUNK);
    const rows = await read.all<{ message_id: string }>(`select message_id from broker_applied_message where queue = ? and message_id in (${marks(part.length)})`, [queue, ...part]);
    for (const r of rows) found.add(r.message_id);
  }
  return found;
}

/** Record applied ids in the transaction that applied them. */
export async function recordApplied(tx: StoreTx, queue: string, ids: string[], at: string): Promise<void> {
  for (let i = 0; i < ids.length; i += CHUNK) {
    const part = ids.slice(i, i + CHUNK);
    await exec(tx, `insert into broker_applied_message (queue, message_id, applied_at) values ${part.map(() => '(?, ?, ?)').join(', ')} on conflict do nothing`, part.flatMap((id) => [queue, id, at]));
  }
}

/** Forget applied ids older than `before` (ISO time); returns how many. */
export async function pruneApplied(store: Store, before: string): Promise<number> {
  return store.transaction((tx) => exec(tx, 'delete from broker_applied_message where applied_at < ?', [before]));
}

/** The live company holding this external id. */
export async function findByExternalId(read: SqlReader, source: string, id: string): Promise<Company | undefined> {
  const rows = await read.all<{ id: unknown }>(
    'select c.id from company_external_id x join company c on c.id = x.company_id where x.source = ? and x.external_id = ? and c.deleted_at is null limit 1',
    [source, id],
  );
  return rows[0] ? findCompany(read, { kind: 'id', id: Number(rows[0].id) }) : undefined;
}
