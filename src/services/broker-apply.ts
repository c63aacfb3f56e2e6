// Apply a batch of validated inbound messages in one store transaction, through the company
// write path (row + outbox event each), recording their message ids in the same transaction.
// A message the store refuses for a data reason (a key another company holds) is taken out
// and the rest committed without it; any other error fails the whole batch (requeued).
import type { NaturalKey } from '../domain/company.js';
import { CompanyctlError } from '../errors.js';
import { findCompany } from '../infra/db/company-read.js';
import { appliedAmong, findByExternalId, recordApplied } from '../infra/db/broker-inbound.js';
import { preparedWrites, type CompanyWriter } from '../infra/db/company-write-prepared.js';
import type { StoreTx } from '../infra/db/store.js';
import { InvalidMessage, type InboundMessage } from './broker-message.js';
import { afterCommit, createBody, deleteBody, updateBody, writeInTransaction, type CompanyDeps, type WriteResult } from './company.js';
import type { Company } from '../domain/company.js';

export interface ApplyDeps {
  company: CompanyDeps;
  queue: string;
  onCommit?: (eventIds: number[]) => void;
}

export type Outcome = 'created' | 'updated' | 'unchanged' | 'deleted' | 'missing' | 'duplicates';

export interface Applied<T> {
  counts: Record<Outcome, number>;
  /** Messages refused by the store for a data reason: dead-lettered, not retried. */
  failed: { item: T; reason: InvalidMessage }[];
}

// Data problems a retry cannot fix; anything else (busy, unreachable, a conflict with a concurrent writer) is transient.
const PERMANENT = new Set(['COMPANYCTL_INVALID_INPUT', 'COMPANYCTL_MISSING_FIELD', 'COMPANYCTL_DUPLICATE_KEY', 'COMPANYCTL_NOT_FOUND', 'COMPANYCTL_NOT_DELETED', 'COMPANYCTL_USAGE']);

class ItemFailed extends Error {
  constructor(
    readonly index: number,
    readonly reason: InvalidMessage,
  ) {
    super('one message of the batch was refused');
  }
}

function permanentReason(e: unknown): InvalidMessage | undefined {
  if (e instanceof CompanyctlError && PERMANENT.has(e.code)) return new InvalidMessage(e.message, e.code, e.field);
  const name = (e as Error)?.name ?? '';
  if (name === 'UniqueConstraintViolationException' || /UNIQUE constraint failed|duplicate key value/i.test(String((e as Error)?.message))) {
    return new InvalidMessage('another company holds one of these keys (domain, LEI, registration or external id)', 'COMPANYCTL_DUPLICATE_KEY');
  }
  return undefined;
}

const emptyCounts = (): Record<Outcome, number> => ({ created: 0, updated: 0, unchanged: 0, deleted: 0, missing: 0, duplicates: 0 });

export async function applyBatch<T>(deps: ApplyDeps, items: { item: T; message: InboundMessage }[]): Promise<Applied<T>> {
  const out: Applied<T> = { counts: emptyCounts(), failed: [] };
  // zod, for the cross-field checks of an update (loaded once, after the first batch for free).
  const { completeCompany } = await import('../domain/validate.js');
  // The same message twice in one batch: the second is a duplicate of the first.
  const seen = new Set<string>();
  const unique: typeof items = [];
  for (const it of items) {
    if (seen.has(it.message.messageId)) out.counts.duplicates++;
    else (seen.add(it.message.messageId), unique.push(it));
  }
  await applyGroup(deps, unique, out, completeCompany);
  return out;
}

async function applyGroup<T>(deps: ApplyDeps, items: { item: T; message: InboundMessage }[], out: Applied<T>, complete: typeof import('../domain/validate.js').completeCompany): Promise<void> {
  if (items.length === 0) return;
  const store = await deps.company.store();
  try {
    const { counts, written } = await store.transaction(async (ormTx) => {
      const { tx, w } = await preparedWrites(ormTx);
      const counts = emptyCounts();
      const written: (WriteResult & { before?: Company })[] = [];
      const already = await appliedAmong(tx.read, deps.queue, items.map((i) => i.message.messageId));
      const fresh: string[] = [];
      for (let i = 0; i < items.length; i++) {
        const m = items[i]!.message;
        if (already.has(m.messageId)) {
          counts.duplicates++;
          continue;
        }
        try {
          const r = await applyOne(tx, w, deps.company, m, complete);
          counts[r.outcome]++;
          if (r.written) written.push(r.written);
        } catch (e) {
          const reason = permanentReason(e);
          if (reason) throw new ItemFailed(i, reason);
          throw e;
        }
        fresh.push(m.messageId);
      }
      await recordApplied(tx, deps.queue, fresh, deps.company.now().toISOString());
      return { counts, written };
    });
    for (const k of Object.keys(counts) as Outcome[]) out.counts[k] += counts[k];
    if (written.length > 0) afterCommit(deps.company, ...written);
    if (written.length > 0) deps.onCommit?.(written.map((w) => w.eventId));
  } catch (e) {
    if (!(e instanceof ItemFailed)) throw e;
    // Rolled back: commit the ones before it, drop it, go on with the ones after it.
    out.failed.push({ item: items[e.index]!.item, reason: e.reason });
    await applyGroup(deps, items.slice(0, e.index), out, complete);
    await applyGroup(deps, items.slice(e.index + 1), out, complete);
  }
}

async function applyOne(
  tx: StoreTx,
  using: CompanyWriter,
  deps: CompanyDeps,
  m: InboundMessage,
  complete: typeof import('../domain/validate.js').completeCompany,
): Promise<{ outcome: Exclude<Outcome, 'duplicates'>; written?: WriteResult & { before?: Company } }> {
  const existing = m.key.kind === 'external' ? await findByExternalId(tx.read, m.key.source, m.key.id) : await findCompany(tx.read, m.key as NaturalKey);
  if (m.op === 'delete') {
    if (!existing) return { outcome: 'missing' };
    return { outcome: 'deleted', written: await writeInTransaction(tx, deps, (t, now, w) => deleteBody(t, now, w, existing, false), using) };
  }
  if (!existing) return { outcome: 'created', written: await writeInTransaction(tx, deps, (t, now, w) => createBody(t, now, w, m.input!), using) };
  const written = await writeInTransaction(tx, deps, (t, now, w) => updateBody(t, now, w, existing, m.patch!, complete), using);
  return written ? { outcome: 'updated', written } : { outcome: 'unchanged' };
}
