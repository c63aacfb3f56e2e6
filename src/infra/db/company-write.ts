// Company writes inside a StoreTx, through MikroORM's native insert/update/delete (no
// identity map, so bulk callers never grow one). Optimistic concurrency on `version`.
import type { CompanyInput, ExternalId } from '../../domain/company.js';
import { nameFoldColumn } from '../../domain/name-fold.js';
import { CompanyctlError } from '../../errors.js';
import { CompanyEntity, CompanyExternalIdEntity, OutboxEventEntity } from './entities.js';
import type { StoreTx } from './store.js';

function toColumns(input: CompanyInput) {
  const { externalIds: _ignored, ...fields } = input;
  return { ...fields, nameFold: nameFoldColumn(input.name) };
}

export async function insertCompany(tx: StoreTx, input: CompanyInput, now: string): Promise<number> {
  const id = await tx.em.insert(CompanyEntity, { ...toColumns(input), version: 1, createdAt: now, updatedAt: now, deletedAt: null });
  await replaceExternalIds(tx, Number(id), input.externalIds);
  return Number(id);
}

/** Update with optimistic concurrency: only if the stored version is still `expectedVersion`. */
export async function updateCompany(tx: StoreTx, id: number, expectedVersion: number, input: CompanyInput, now: string): Promise<void> {
  const changed = await tx.em.nativeUpdate(
    CompanyEntity,
    { id, version: expectedVersion },
    { ...toColumns(input), version: expectedVersion + 1, updatedAt: now },
  );
  if (changed !== 1) throw staleVersion(id, expectedVersion);
  await replaceExternalIds(tx, id, input.externalIds);
}

export async function setDeleted(tx: StoreTx, id: number, expectedVersion: number, deletedAt: string | null, now: string): Promise<void> {
  const changed = await tx.em.nativeUpdate(CompanyEntity, { id, version: expectedVersion }, { deletedAt, version: expectedVersion + 1, updatedAt: now });
  if (changed !== 1) throw staleVersion(id, expectedVersion);
}

export async function hardDeleteCompany(tx: StoreTx, id: number, expectedVersion: number): Promise<void> {
  await tx.em.nativeDelete(CompanyExternalIdEntity, { companyId: id });
  const changed = await tx.em.nativeDelete(CompanyEntity, { id, version: expectedVersion });
  if (changed !== 1) throw staleVersion(id, expectedVersion);
}

async function replaceExternalIds(tx: StoreTx, companyId: number, ids: ExternalId[]): Promise<void> {
  await tx.em.nativeDelete(CompanyExternalIdEntity, { companyId });
  if (ids.length > 0) {
    await tx.em.insertMany(
      CompanyExternalIdEntity,
      ids.map((e) => ({ source: e.source, externalId: e.id, companyId })),
    );
  }
}

export interface OutboxEventInput {
  type: string;
  companyId: number | null;
  actor: string;
  payload: Record<string, unknown>;
  createdAt: string;
}

export async function insertOutboxEvent(tx: StoreTx, event: OutboxEventInput): Promise<number> {
  const id = await tx.em.insert(OutboxEventEntity, { ...event, status: 'pending', attempts: 0 });
  return Number(id);
}

export function staleVersion(id: number, expected: number): CompanyctlError {
  return new CompanyctlError('COMPANYCTL_VERSION_CONFLICT', `company ${id} changed since version ${expected}`, {
    hint: `run "companyctl company get ${id} --fresh" and apply your change to the current version`,
    data: { id, expectedVersion: expected },
  });
}
