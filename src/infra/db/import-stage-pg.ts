// The PostgreSQL import path: a chunk's rows go through COPY into a temporary staging table
// (one COPY stream a chunk), then a few set-based statements match, compare, insert and
// update them, all in the chunk's transaction. Only ids and verdicts travel back to Node.
import type { Writable } from 'node:stream';
import { COLS, ROW_COLUMNS, connectionOf, isUnique, type KeyKind, type UpdateOutcome, type Value } from './import-write.js';
import type { StoreTx } from './store.js';

interface PgConnection {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
  query<T extends Writable>(stream: T): T;
}

/** A staged row matched to a live company by the import key. */
export interface StagedMatch {
  seq: number;
  companyId: number;
  /** Every field the row gave already holds its value. */
  same: boolean;
  /** The row gave no external ids, or the company holds exactly these. */
  extSame: boolean;
  /** External key: the company is soft-deleted. */
  deleted: boolean;
  /** External key: the row's ids are held by more than one company (then companyId is the lowest). */
  others: number[];
}

/** An external id a staged row gives that another company holds, or an earlier row of the chunk gives too. */
export interface StagedExtClaim {
  seq: number;
  pair: string;
  holder: number | null;
  firstSeq: number;
}

const STAGE = 'import_stage';
const q = (c: string) => `s.${c}`;

/** COPY text format: \N for null; backslash, tab and line breaks escaped. */
function copyText(v: Value): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'number') return String(v);
  if (!/[\\\t\n\r]/.test(v)) return v;
  return v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/** "The fields the row gave hold its values": per column, not given, or not distinct. */
const SAME = ROW_COLUMNS.map((c, i) => `((s.mask & ${1 << i}) = 0 or c.${c} is not distinct from s.${c})`).join(' and ');
const STORED_EXT = `(select coalesce(jsonb_agg(jsonb_build_array(x.source, x.external_id) order by x.source), '[]'::jsonb) from company_external_id x where x.company_id = c.id)`;
const EXT_SAME = `(s.ext is null or ${STORED_EXT} = s.ext)`;
const KEY_JOIN: Record<KeyKind, string> = {
  domain: 'c.domain = s.domain',
  lei: 'c.lei = s.lei',
  registration: 'c.registration_country = s.registration_country and c.registration_number = s.registration_number',
};

export class PgStage {
  private copy: Writable | undefined;
  private rows = 0;

  private constructor(private readonly conn: PgConnection) {}

  /** A fresh staging table for this chunk (dropped at commit), with the company columns' own types. */
  static async open(tx: StoreTx): Promise<PgStage> {
    const conn = (await connectionOf(tx)) as PgConnection;
    await conn.query(`drop table if exists pg_temp.${STAGE}`);
    await conn.query(
      `create temp table ${STAGE} on commit drop as
       select 0::int as seq, 0::int as mask, null::jsonb as ext, null::int as match_id, null::int as match_version,
              null::int as new_id, ${COLS} from company with no data`,
    );
    const stage = new PgStage(conn);
    const { from } = await import('pg-copy-streams');
    stage.copy = conn.query(from(`copy ${STAGE} (seq, mask, ext, ${COLS}) from stdin`));
    return stage;
  }

  /** Stage rows (values in ROW_COLUMNS order, ext as JSON text or null); seq numbers them in the chunk. */
  async add(seq0: number, values: Value[], masks: number[], ext: (string | null)[]): Promise<void> {
    const width = ROW_COLUMNS.length;
    let out = '';
    for (let i = 0; i < masks.length; i++) {
      out += `${seq0 + i}\t${masks[i]}\t${copyText(ext[i] ?? null)}`;
      const base = i * width;
      for (let c = 0; c < width; c++) out += `\t${copyText(values[base + c]!)}`;
      out += '\n';
    }
    this.rows += masks.length;
    // One write a batch; wait only when the socket pushes back.
    if (!this.copy!.write(out)) await new Promise<void>((r) => this.copy!.once('drain', r));
  }

  /** End the COPY and index the staged rows for the set-based statements. */
  async close(): Promise<void> {
    const copy = this.copy!;
    this.copy = undefined;
    await new Promise<void>((resolve, reject) => {
      copy.once('error', reject);
      copy.once('finish', resolve);
      copy.end();
    });
    // A temporary table has no statistics until analysed: the joins below need its size.
    await this.conn.query(`analyze ${STAGE}`);
  }

  get size(): number {
    return this.rows;
  }

  /** Rows whose key leads to a live company (domain, LEI, registration): what they would change. */
  async matchByKey(kind: KeyKind): Promise<StagedMatch[]> {
    const res = await this.conn.query(
      `update ${STAGE} s set match_id = c.id, match_version = c.version from company c
       where ${KEY_JOIN[kind]} and c.deleted_at is null
       returning s.seq, c.id, ${SAME} as same, ${EXT_SAME} as ext_same`,
    );
    return res.rows.map((r) => ({ seq: Number(r.seq), companyId: Number(r.id), same: r.same === true, extSame: r.ext_same === true, deleted: false, others: [] }));
  }

  /** Rows whose external ids (of `source`, or any) lead to a company, live or deleted. */
  async matchByExternalId(source: string | undefined): Promise<StagedMatch[]> {
    const res = await this.conn.query(
      `with m as (
         select s.seq, array_agg(distinct x.company_id order by x.company_id) as ids
         from ${STAGE} s cross join lateral jsonb_array_elements(s.ext) e
         join company_external_id x on x.source = e->>0 and x.external_id = e->>1
         where s.ext is not null and ($1::text is null or e->>0 = $1::text)
         group by s.seq
       )
       update ${STAGE} s set match_id = c.id, match_version = c.version
       from m join company c on c.id = m.ids[1]
       where s.seq = m.seq
       returning s.seq, c.id, m.ids, c.deleted_at is not null as deleted, ${SAME} as same, ${EXT_SAME} as ext_same`,
      [source ?? null],
    );
    return res.rows.map((r) => ({
      seq: Number(r.seq),
      companyId: Number(r.id),
      same: r.same === true,
      extSame: r.ext_same === true,
      deleted: r.deleted === true,
      others: (r.ids as unknown[]).map(Number).slice(1),
    }));
  }

  /** External ids of staged rows held by a company other than the row's match, or given by an earlier row too. */
  async externalIdClaims(): Promise<StagedExtClaim[]> {
    const res = await this.conn.query(
      `with p as (
         select s.seq, s.match_id, e->>0 as source, e->>1 as external_id,
                min(s.seq) over (partition by e->>0, e->>1) as first_seq
         from ${STAGE} s cross join lateral jsonb_array_elements(s.ext) e
         where s.ext is not null
       )
       select p.seq, p.source || ':' || p.external_id as pair, x.company_id as holder, p.first_seq
       from p left join company_external_id x on x.source = p.source and x.external_id = p.external_id
       where (x.company_id is not null and x.company_id is distinct from p.match_id) or p.first_seq <> p.seq
       order by p.seq, p.source`,
    );
    return res.rows.map((r) => ({ seq: Number(r.seq), pair: String(r.pair), holder: r.holder === null ? null : Number(r.holder), firstSeq: Number(r.first_seq) }));
  }

  /** Insert these rows (in seq order) with new ids; returns seq -> id, without the rows a unique key stopped. */
  async insert(seqs: number[], now: string): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    if (seqs.length === 0) return out;
    const drawn = await this.conn.query(
      `update ${STAGE} set new_id = nextval(pg_get_serial_sequence('company', 'id')) where seq in (select unnest($1::int[])) returning seq, new_id`,
      [seqs],
    );
    const bySeq = new Map<number, number>();
    for (const r of drawn.rows) bySeq.set(Number(r.new_id), Number(r.seq));
    const res = await this.conn.query(
      `insert into company (id, ${COLS}, version, created_at, updated_at)
       select s.new_id, ${ROW_COLUMNS.map(q).join(', ')}, 1, $1::timestamptz, $1::timestamptz
       from ${STAGE} s where s.new_id is not null order by s.seq
       on conflict do nothing returning id`,
      [now],
    );
    for (const r of res.rows) out.set(bySeq.get(Number(r.id))!, Number(r.id));
    // A row a unique key stopped keeps no id: its external ids are not written.
    if (out.size < seqs.length) await this.conn.query(`update ${STAGE} set new_id = null where new_id is not null and seq not in (select unnest($1::int[]))`, [[...out.keys()]]);
    return out;
  }

  /** Update matched companies with the fields their rows gave; per row ok, stale (changed meanwhile) or conflict (a unique key). */
  async update(seqs: number[], now: string): Promise<Map<number, UpdateOutcome>> {
    const out = new Map<number, UpdateOutcome>();
    if (seqs.length === 0) return out;
    const set = ROW_COLUMNS.map((c, i) => `${c} = case when (s.mask & ${1 << i}) <> 0 then s.${c} else c.${c} end`).join(', ');
    const run = async (part: number[]) => {
      const res = await this.conn.query(
        `update company c set ${set}, version = c.version + 1, updated_at = $2::timestamptz
         from ${STAGE} s where s.seq in (select unnest($1::int[])) and c.id = s.match_id and c.version = s.match_version
         returning s.seq`,
        [part, now],
      );
      return new Set(res.rows.map((r) => Number(r.seq)));
    };
    await this.conn.query('savepoint import_update');
    try {
      const done = await run(seqs);
      await this.conn.query('release savepoint import_update');
      for (const s of seqs) out.set(s, done.has(s) ? 'ok' : 'stale');
      return out;
    } catch (e) {
      await this.conn.query('rollback to savepoint import_update');
      if (!isUnique(e)) throw e;
    }
    // A key clash somewhere: row by row, each in its own savepoint.
    for (const s of seqs) {
      await this.conn.query('savepoint import_row');
      try {
        out.set(s, (await run([s])).has(s) ? 'ok' : 'stale');
        await this.conn.query('release savepoint import_row');
      } catch (e) {
        await this.conn.query('rollback to savepoint import_row');
        if (!isUnique(e)) throw e;
        out.set(s, 'conflict');
      }
    }
    return out;
  }

  /** Write external ids: those of inserted rows, and replace those of these updated rows. */
  async writeExternalIds(replaceSeqs: number[]): Promise<void> {
    if (replaceSeqs.length) {
      await this.conn.query(`delete from company_external_id x using ${STAGE} s where s.seq in (select unnest($1::int[])) and x.company_id = s.match_id`, [replaceSeqs]);
    }
    await this.conn.query(
      `insert into company_external_id (source, external_id, company_id)
       select e->>0, e->>1, coalesce(s.new_id, s.match_id)
       from ${STAGE} s cross join lateral jsonb_array_elements(s.ext) e
       where s.ext is not null and (s.new_id is not null or s.seq in (select unnest($1::int[])))`,
      [replaceSeqs],
    );
  }

  /** The values a staged row gave (null for the fields it did not give), for explaining a clash. */
  async givenValues(seq: number): Promise<Value[]> {
    const res = await this.conn.query(`select mask, ${COLS} from ${STAGE} where seq = $1`, [seq]);
    const r = res.rows[0] ?? {};
    const mask = Number(r.mask);
    return ROW_COLUMNS.map((c, i) => (mask & (1 << i) && r[c] !== null && r[c] !== undefined ? String(r[c]).trim() : null));
  }
}
