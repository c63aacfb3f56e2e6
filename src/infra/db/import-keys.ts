// Key lookups of an import on the read connection (committed data, no write lock): a resumed
// import relearns which companies the already-committed rows of its file led to.
import type { SqlReader } from './store.js';

// At most 200 terms a query: SQLite caps an expression's depth at 1000.
const TERMS = 200;

/** "source:id" -> the company holding that external id, for the pairs that are held. */
export async function externalIdHolders(read: SqlReader, pairs: [string, string][]): Promise<Map<string, number>> {
  const holders = new Map<string, number>();
  for (let k = 0; k < pairs.length; k += TERMS) {
    const part = pairs.slice(k, k + TERMS);
    const rows = await read.all<{ source: string; external_id: string; company_id: unknown }>(
      `select source, external_id, company_id from company_external_id where ${part.map(() => '(source = ? and external_id = ?)').join(' or ')}`,
      part.flat(),
    );
    for (const r of rows) holders.set(`${r.source}:${r.external_id}`, Number(r.company_id));
  }
  return holders;
}

/** Ids of the live companies holding these keys (each key: [domain], [lei] or [country, number]). */
export async function liveCompaniesByKey(read: SqlReader, kind: 'domain' | 'lei' | 'registration', keys: unknown[][]): Promise<number[]> {
  const ids: number[] = [];
  for (let k = 0; k < keys.length; k += TERMS) {
    const part = keys.slice(k, k + TERMS);
    const where =
      kind === 'registration'
        ? part.map(() => '(registration_country = ? and registration_number = ?)').join(' or ')
        : `${kind} in (${part.map(() => '?').join(', ')})`;
    const rows = await read.all<{ id: unknown }>(`select id from company where deleted_at is null and (${where})`, part.flat());
    for (const r of rows) ids.push(Number(r.id));
  }
  return ids;
}
