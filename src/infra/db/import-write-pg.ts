// The import writer on PostgreSQL: one array-bound statement per batch (unnest), on the
// connection the chunk's transaction holds.
import { normaliseAmount } from '../../domain/normalise.js';
import { COLS, ROW_COLUMNS, isUnique, keyOf, type ExistingRow, type ImportWriter, type PgClient, type UpdateOutcome, type Value } from './import-write.js';

const PG_TYPES: Record<(typeof ROW_COLUMNS)[number], string> = {
  name: 'text',
  legal_name: 'text',
  domain: 'text',
  website: 'text',
  registration_number: 'text',
  registration_country: 'text',
  lei: 'text',
  industry: 'text',
  employees: 'integer',
  revenue_amount: 'numeric',
  revenue_currency: 'text',
  address_line1: 'text',
  address_line2: 'text',
  city: 'text',
  region: 'text',
  postcode: 'text',
  country: 'text',
  status: 'text',
  incorporation_date: 'date',
  tags: 'jsonb',
};

/** PostgreSQL's representation -> the import's (canonical decimals, tags as JSON text). */
function pgValues(r: Record<string, unknown>): Value[] {
  return ROW_COLUMNS.map((c) => {
    const v = r[c];
    if (v === null || v === undefined) return null;
    if (c === 'tags') return JSON.stringify(v);
    if (c === 'revenue_amount') return normaliseAmount(String(v));
    if (c === 'employees') return Number(v);
    if (v instanceof Date) return v.toISOString().slice(0, 10);
    return String(v).trim();
  });
}

function columnArrays(rows: Value[][]): unknown[][] {
  return ROW_COLUMNS.map((_, i) => rows.map((r) => (r[i] === null || r[i] === undefined ? null : String(r[i]))));
}

export function postgresWriter(client: PgClient): ImportWriter {
  const unnestCols = ROW_COLUMNS.map((c, i) => `$${i + 1}::text[]`).join(', ');
  const casts = ROW_COLUMNS.map((c) => `cast(v.${c} as ${PG_TYPES[c]})`).join(', ');
  const select = `c.id, c.version, ${ROW_COLUMNS.map((c) => `c.${c}`).join(', ')}`;
  const fromRow = (r: Record<string, unknown>): ExistingRow => ({ id: Number(r.id), version: Number(r.version), values: pgValues(r) });
  return {
    async findByKey(kind, keys) {
      const out = new Map<string, ExistingRow>();
      if (keys.length === 0) return out;
      let res;
      if (kind === 'registration') {
        res = await client.query(
          `select ${select} from company c join unnest($1::text[], $2::text[]) as k(cc, num) on c.registration_country = k.cc and c.registration_number = k.num where c.deleted_at is null`,
          [keys.map((k) => k[0]), keys.map((k) => k[1])],
        );
        for (const r of res.rows) out.set(keyOf([r.registration_country, r.registration_number]), fromRow(r));
      } else {
        res = await client.query(`select ${select} from company c where c.${kind} = any($1::text[]) and c.deleted_at is null`, [keys.map((k) => k[0])]);
        for (const r of res.rows) out.set(keyOf([r[kind]]), fromRow(r));
      }
      return out;
    },
    async findById(ids) {
      const out = new Map<number, ExistingRow & { deleted: boolean }>();
      if (ids.length === 0) return out;
      const res = await client.query(`select ${select}, c.deleted_at from company c where c.id = any($1::int[])`, [ids]);
      for (const r of res.rows) out.set(Number(r.id), { ...fromRow(r), deleted: r.deleted_at !== null });
      return out;
    },
    async externalHolders(pairs) {
      const out = new Map<string, number>();
      if (pairs.length === 0) return out;
      const res = await client.query(
        `select x.source, x.external_id, x.company_id from company_external_id x join unnest($1::text[], $2::text[]) as k(s, e) on x.source = k.s and x.external_id = k.e`,
        [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
      );
      for (const r of res.rows) out.set(`${r.source}:${r.external_id}`, Number(r.company_id));
      return out;
    },
    async externalIdsOf(companyIds) {
      const out = new Map<number, [string, string][]>(companyIds.map((id) => [id, []]));
      if (companyIds.length === 0) return out;
      const res = await client.query(`select company_id, source, external_id from company_external_id where company_id = any($1::int[]) order by source`, [companyIds]);
      for (const r of res.rows) out.get(Number(r.company_id))?.push([String(r.source), String(r.external_id)]);
      return out;
    },
    async insert(rows, now) {
      if (rows.length === 0) return [];
      // Ids are drawn first, so the rows that RETURNING leaves out are the ones that clashed.
      const ids = (
        await client.query(`select nextval(pg_get_serial_sequence('company', 'id')) as id from generate_series(1, $1::int)`, [rows.length])
      ).rows.map((r) => Number(r.id));
      const n = ROW_COLUMNS.length;
      const res = await client.query(
        `insert into company (id, ${COLS}, version, created_at, updated_at)
         select cast(v.id as integer), ${casts}, 1, cast($${n + 2} as timestamptz), cast($${n + 2} as timestamptz)
         from unnest(${unnestCols}, $${n + 1}::text[]) as v(${COLS}, id)
         on conflict do nothing returning id`,
        [...columnArrays(rows), ids.map(String), now],
      );
      const inserted = new Set(res.rows.map((r) => Number(r.id)));
      return ids.map((id) => (inserted.has(id) ? id : null));
    },
    async update(rows, now) {
      if (rows.length === 0) return [];
      const n = ROW_COLUMNS.length;
      const run = async (part: typeof rows) => {
        const res = await client.query(
          `update company c set ${ROW_COLUMNS.map((col) => `${col} = cast(v.${col} as ${PG_TYPES[col]})`).join(', ')},
             version = c.version + 1, updated_at = cast($${n + 3} as timestamptz)
           from unnest(${unnestCols}, $${n + 1}::int[], $${n + 2}::int[]) as v(${COLS}, id, version)
           where c.id = v.id and c.version = v.version returning c.id`,
          [...columnArrays(part.map((r) => r.values)), part.map((r) => r.id), part.map((r) => r.version), now],
        );
        return new Set(res.rows.map((r) => Number(r.id)));
      };
      await client.query('savepoint import_update');
      try {
        const done = await run(rows);
        await client.query('release savepoint import_update');
        return rows.map((r) => (done.has(r.id) ? 'ok' : 'stale'));
      } catch (e) {
        await client.query('rollback to savepoint import_update');
        if (!isUnique(e)) throw e;
      }
      // A key clash somewhere in the batch: row by row, each in its own savepoint.
      const out: UpdateOutcome[] = [];
      for (const r of rows) {
        await client.query('savepoint import_row');
        try {
          out.push((await run([r])).has(r.id) ? 'ok' : 'stale');
          await client.query('release savepoint import_row');
        } catch (e) {
          await client.query('rollback to savepoint import_row');
          if (!isUnique(e)) throw e;
          out.push('conflict');
        }
      }
      return out;
    },
    async setExternalIds(items) {
      if (items.length === 0) return;
      await client.query('delete from company_external_id where company_id = any($1::int[])', [items.map((i) => i.companyId)]);
      const flat = items.flatMap((i) => i.ids.map(([s, id]) => [s, id, i.companyId] as const));
      if (flat.length === 0) return;
      await client.query(
        'insert into company_external_id (source, external_id, company_id) select * from unnest($1::text[], $2::text[], $3::int[])',
        [flat.map((f) => f[0]), flat.map((f) => f[1]), flat.map((f) => f[2])],
      );
    },
  };
}
