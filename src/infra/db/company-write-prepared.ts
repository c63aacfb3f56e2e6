// The company writes of company-write.ts and the reads of a transaction, on SQLite through
// statements prepared once per connection on the driver connection the MikroORM transaction
// holds (PERF-NOTES: MikroORM builds and prepares every statement anew; for a batch of
// inbound messages that was ~90% of the time). Same SQL effects; PostgreSQL keeps the ORM path.
import type { Database, Statement } from 'better-sqlite3';
import type { CompanyInput, ExternalId } from '../../domain/company.js';
import { nameFoldColumn } from '../../domain/name-fold.js';
import * as orm from './company-write.js';
import { connectionOf } from './import-write.js';
import type { SqlReader, StoreTx } from './store.js';

export type CompanyWriter = Pick<typeof orm, 'insertCompany' | 'updateCompany' | 'setDeleted' | 'hardDeleteCompany' | 'insertOutboxEvent'>;

const statements = new WeakMap<Database, Map<string, Statement>>();
// Reads with "in (?, ?, …)" lists make a statement per list length: keep the cache bounded.
const MAX_STATEMENTS = 200;

function stmt(db: Database, sql: string): Statement {
  let m = statements.get(db);
  if (!m) statements.set(db, (m = new Map()));
  let s = m.get(sql);
  if (!s) {
    if (m.size >= MAX_STATEMENTS) m.clear();
    m.set(sql, (s = db.prepare(sql)));
  }
  return s;
}

const COLUMNS = [
  'name', 'legal_name', 'domain', 'website', 'registration_number', 'registration_country', 'lei', 'industry', 'employees', 'revenue_amount',
  'revenue_currency', 'address_line1', 'address_line2', 'city', 'region', 'postcode', 'country', 'status', 'incorporation_date', 'tags', 'name_fold',
] as const;

const values = (c: CompanyInput): unknown[] => [
  c.name, c.legalName, c.domain, c.website, c.registrationNumber, c.registrationCountry, c.lei, c.industry, c.employees, c.revenueAmount,
  c.revenueCurrency, c.addressLine1, c.addressLine2, c.city, c.region, c.postcode, c.country, c.status, c.incorporationDate, JSON.stringify(c.tags),
  // The search column, as company-write.ts derives it (src/domain/name-fold.ts).
  nameFoldColumn(c.name),
];

const INSERT = `insert into company (${COLUMNS.join(', ')}, version, created_at, updated_at, deleted_at) values (${COLUMNS.map(() => '?').join(', ')}, 1, ?, ?, null)`;
const UPDATE = `update company set ${COLUMNS.map((c) => `${c} = ?`).join(', ')}, version = ?, updated_at = ? where id = ? and version = ?`;

/** A transaction whose reads and company writes use prepared statements (SQLite), or the ORM's (PostgreSQL). */
export async function preparedWrites(tx: StoreTx): Promise<{ tx: StoreTx; w: CompanyWriter }> {
  if (tx.dialect !== 'sqlite') return { tx, w: orm };
  const db = (await connectionOf(tx)) as Database;
  const read: SqlReader = { all: async <T>(sql: string, params: unknown[] = []) => stmt(db, sql).all(...params) as T[] };
  const ids = (companyId: number, list: ExternalId[], fresh = false) => {
    if (!fresh) stmt(db, 'delete from company_external_id where company_id = ?').run(companyId);
    for (const e of list) stmt(db, 'insert into company_external_id (source, external_id, company_id) values (?, ?, ?)').run(e.source, e.id, companyId);
  };
  const w: CompanyWriter = {
    async insertCompany(_tx, input, now) {
      const id = Number(stmt(db, INSERT).run(...values(input), now, now).lastInsertRowid);
      ids(id, input.externalIds, true);
      return id;
    },
    async updateCompany(_tx, id, expectedVersion, input, now) {
      if (stmt(db, UPDATE).run(...values(input), expectedVersion + 1, now, id, expectedVersion).changes !== 1) throw orm.staleVersion(id, expectedVersion);
      ids(id, input.externalIds);
    },
    async setDeleted(_tx, id, expectedVersion, deletedAt, now) {
      const r = stmt(db, 'update company set deleted_at = ?, version = ?, updated_at = ? where id = ? and version = ?').run(deletedAt, expectedVersion + 1, now, id, expectedVersion);
      if (r.changes !== 1) throw orm.staleVersion(id, expectedVersion);
    },
    async hardDeleteCompany(_tx, id, expectedVersion) {
      stmt(db, 'delete from company_external_id where company_id = ?').run(id);
      if (stmt(db, 'delete from company where id = ? and version = ?').run(id, expectedVersion).changes !== 1) throw orm.staleVersion(id, expectedVersion);
    },
    async insertOutboxEvent(_tx, e) {
      const r = stmt(db, `insert into outbox_event (type, company_id, actor, payload, status, attempts, created_at) values (?, ?, ?, ?, 'pending', 0, ?)`).run(
        e.type,
        e.companyId,
        e.actor,
        JSON.stringify(e.payload),
        e.createdAt,
      );
      return Number(r.lastInsertRowid);
    },
  };
  return { tx: { ...tx, read }, w };
}
