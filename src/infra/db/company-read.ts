// Company reads: portable SQL with `?` placeholders, run by any SqlReader (raw SQLite or
// MikroORM). Imports no ORM, so a read on SQLite starts fast.
import { foldName } from '../../domain/name-fold.js';
import { normaliseAmount } from '../../domain/normalise.js';
import type { Company, CompanyInput, ExternalId, NaturalKey } from '../../domain/company.js';
import type { SortField } from '../../domain/company.js';
import type { Dialect, Row, SqlReader } from './store.js';

const COLUMNS = `c.id, c.name, c.legal_name, c.domain, c.website, c.registration_number, c.registration_country,
  c.lei, c.industry, c.employees, c.revenue_amount, c.revenue_currency, c.address_line1, c.address_line2,
  c.city, c.region, c.postcode, c.country, c.status, c.incorporation_date, c.tags, c.version,
  c.created_at, c.updated_at, c.deleted_at`;

// SQLite holds ISO strings already; PostgreSQL returns '2026-11-25 13:37:05.856+00'.
const iso = (v: unknown): string => {
  if (v instanceof Date) return v.toISOString();
  const s = String(v);
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(s) ? s : new Date(s).toISOString();
};
const isoOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : iso(v));
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v).trim());

export function rowToCompany(r: Row, externalIds: ExternalId[]): Company {
  const tags = typeof r.tags === 'string' ? (JSON.parse(r.tags) as string[]) : ((r.tags as string[] | null) ?? []);
  return {
    id: Number(r.id),
    name: String(r.name),
    legalName: str(r.legal_name),
    domain: str(r.domain),
    website: str(r.website),
    registrationNumber: str(r.registration_number),
    registrationCountry: str(r.registration_country),
    lei: str(r.lei),
    industry: str(r.industry),
    employees: r.employees === null || r.employees === undefined ? null : Number(r.employees),
    revenueAmount: r.revenue_amount === null || r.revenue_amount === undefined ? null : normaliseAmount(String(r.revenue_amount)),
    revenueCurrency: str(r.revenue_currency),
    addressLine1: str(r.address_line1),
    addressLine2: str(r.address_line2),
    city: str(r.city),
    region: str(r.region),
    postcode: str(r.postcode),
    country: str(r.country),
    status: String(r.status) as Company['status'],
    incorporationDate: r.incorporation_date instanceof Date ? r.incorporation_date.toISOString().slice(0, 10) : str(r.incorporation_date),
    tags,
    externalIds,
    version: Number(r.version),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    deletedAt: isoOrNull(r.deleted_at),
  };
}

async function withExternalIds(read: SqlReader, rows: Row[]): Promise<Company[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => Number(r.id));
  const ext = new Map<number, ExternalId[]>();
  for (let i = 0; i < ids.length; i += 500) {
    const part = ids.slice(i, i + 500);
    const found = await read.all<Row>(
      `select company_id, source, external_id from company_external_id where company_id in (${part.map(() => '?').join(',')}) order by source`,
      part,
    );
    for (const f of found) {
      const list = ext.get(Number(f.company_id)) ?? [];
      list.push({ source: String(f.source), id: String(f.external_id) });
      ext.set(Number(f.company_id), list);
    }
  }
  return rows.map((r) => rowToCompany(r, ext.get(Number(r.id)) ?? []));
}

function keyWhere(key: NaturalKey): { sql: string; params: unknown[] } {
  switch (key.kind) {
    case 'id':
      return { sql: 'c.id = ?', params: [key.id] };
    case 'domain':
      return { sql: 'c.domain = ?', params: [key.domain] };
    case 'lei':
      return { sql: 'c.lei = ?', params: [key.lei] };
    case 'registration':
      return { sql: 'c.registration_country = ? and c.registration_number = ?', params: [key.country, key.number] };
  }
}

/**
 * Find one company by id or natural key. By id, deleted companies are found too (so
 * `restore` and `get` can say "deleted"); by natural key, only live ones.
 */
export async function findCompany(read: SqlReader, key: NaturalKey): Promise<Company | undefined> {
  const where = keyWhere(key);
  const live = key.kind === 'id' ? '' : ' and c.deleted_at is null';
  const rows = await read.all<Row>(`select ${COLUMNS} from company c where ${where.sql}${live} limit 1`, where.params);
  return (await withExternalIds(read, rows))[0];
}

/** Soft-deleted companies holding `key` (several can: a deleted company's keys are free again), newest deletion first. */
export async function findDeletedCompanies(read: SqlReader, key: NaturalKey): Promise<Company[]> {
  const where = keyWhere(key);
  const rows = await read.all<Row>(`select ${COLUMNS} from company c where ${where.sql} and c.deleted_at is not null order by c.deleted_at desc, c.id desc limit 20`, where.params);
  return withExternalIds(read, rows);
}

/** Live companies (other than `exceptId`) that hold any of these keys or external ids. */
export async function findKeyHolders(
  read: SqlReader,
  keys: NaturalKey[],
  externalIds: ExternalId[],
  exceptId?: number,
): Promise<{ key: string; companyId: number; deleted: boolean }[]> {
  const out: { key: string; companyId: number; deleted: boolean }[] = [];
  for (const key of keys) {
    const where = keyWhere(key);
    const rows = await read.all<Row>(`select c.id from company c where ${where.sql} and c.deleted_at is null and c.id <> ?`, [
      ...where.params,
      exceptId ?? -1,
    ]);
    for (const r of rows) out.push({ key: keyLabel(key), companyId: Number(r.id), deleted: false });
  }
  for (const e of externalIds) {
    const rows = await read.all<Row>(
      `select x.company_id, c.deleted_at from company_external_id x join company c on c.id = x.company_id where x.source = ? and x.external_id = ? and x.company_id <> ?`,
      [e.source, e.id, exceptId ?? -1],
    );
    for (const r of rows) out.push({ key: `externalId ${e.source}:${e.id}`, companyId: Number(r.company_id), deleted: r.deleted_at !== null });
  }
  return out;
}

function keyLabel(key: NaturalKey): string {
  switch (key.kind) {
    case 'id':
      return `id ${key.id}`;
    case 'domain':
      return `domain ${key.domain}`;
    case 'lei':
      return `lei ${key.lei}`;
    case 'registration':
      return `registration ${key.country} ${key.number}`;
  }
}

// Names sort case-insensitively, as people expect (index: company_name_lower).
const SORT_COLUMNS: Record<SortField, string> = { id: 'c.id', name: 'lower(c.name)', createdAt: 'c.created_at', updatedAt: 'c.updated_at' };

export interface CompanyFilter {
  nameContains?: string;
  country?: string;
  industry?: string;
  status?: string;
  tag?: string;
  updatedSince?: string;
  includeDeleted?: boolean;
  onlyDeleted?: boolean;
}

export interface PageRequest {
  sort: SortField;
  descending: boolean;
  limit: number;
  /** Position after which to continue: the last row's sort value and id. */
  after?: { value: string | number; id: number };
}

export async function listCompanies(read: SqlReader, dialect: Dialect, filter: CompanyFilter, page: PageRequest): Promise<Company[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.onlyDeleted) where.push('c.deleted_at is not null');
  else if (!filter.includeDeleted) where.push('c.deleted_at is null');
  if (filter.nameContains) {
    // Both sides folded in the application (name_fold is null for ASCII names: lower() folds those).
    where.push(`coalesce(c.name_fold, lower(c.name)) like ? escape '\\'`);
    params.push(`%${foldName(filter.nameContains).replace(/[\\%_]/g, (m) => `\\${m}`)}%`);
  }
  if (filter.country) {
    where.push('c.country = ?');
    params.push(filter.country);
  }
  if (filter.industry) {
    where.push(dialect === 'postgresql' ? 'lower(c.industry) = lower(?)' : 'c.industry = ? collate nocase');
    params.push(filter.industry);
  }
  if (filter.status) {
    where.push('c.status = ?');
    params.push(filter.status);
  }
  if (filter.tag) {
    where.push(dialect === 'postgresql' ? 'c.tags @> cast(? as jsonb)' : 'exists (select 1 from json_each(c.tags) t where t.value = ?)');
    params.push(dialect === 'postgresql' ? JSON.stringify([filter.tag]) : filter.tag);
  }
  if (filter.updatedSince) {
    where.push(dialect === 'postgresql' ? 'c.updated_at >= cast(? as timestamptz)' : 'c.updated_at >= ?');
    params.push(filter.updatedSince);
  }
  const col = SORT_COLUMNS[page.sort];
  const dir = page.descending ? 'desc' : 'asc';
  if (page.after) {
    const cmp = page.descending ? '<' : '>';
    if (page.sort === 'id') {
      where.push(`c.id ${cmp} ?`);
      params.push(page.after.id);
    } else {
      const v = page.sort === 'name' ? 'lower(?)' : dialect === 'postgresql' ? 'cast(? as timestamptz)' : '?';
      where.push(`(${col} ${cmp} ${v} or (${col} = ${v} and c.id ${cmp} ?))`);
      params.push(page.after.value, page.after.value, page.after.id);
    }
  }
  const order = page.sort === 'id' ? `c.id ${dir}` : `${col} ${dir}, c.id ${dir}`;
  const sql = `select ${COLUMNS} from company c${where.length ? ` where ${where.join(' and ')}` : ''} order by ${order} limit ?`;
  const rows = await read.all<Row>(sql, [...params, page.limit]);
  return withExternalIds(read, rows);
}

