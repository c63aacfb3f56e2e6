// Webhooks and their per-event delivery state. Secrets are read only by getWebhookWithSecret
// (to sign); listings never select them.
import type { SqlReader, StoreTx } from './store.js';

export interface WebhookRow {
  id: number;
  url: string;
  events: string[];
  description: string | null;
  createdBy: string;
  createdAt: string;
}

export interface WebhookWithSecret extends WebhookRow {
  secret: string;
}

export interface WebhookStats {
  delivered: number;
  failing: number;
  lastError: string | null;
  lastAttemptAt: string | null;
}

const iso = (v: unknown): string | null => (v == null ? null : v instanceof Date ? v.toISOString() : String(v));
const list = (v: unknown): string[] => (typeof v === 'string' ? JSON.parse(v) : (v as string[]));

function toRow(r: Record<string, unknown>): WebhookRow {
  return {
    id: Number(r.id),
    url: String(r.url),
    events: list(r.events),
    description: r.description == null ? null : String(r.description),
    createdBy: String(r.created_by),
    createdAt: iso(r.created_at)!,
  };
}

async function exec(tx: StoreTx, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await tx.em.getConnection().execute(sql, params, 'all', tx.em.getTransactionContext())) as Record<string, unknown>[];
}

const COLUMNS = 'id, url, events, description, created_by, created_at';

export async function insertWebhook(
  tx: StoreTx,
  w: { url: string; events: string[]; secret: string; description: string | null; createdBy: string; createdAt: string },
): Promise<number> {
  const rows = await exec(tx, 'insert into webhook (url, events, secret, description, created_by, created_at) values (?, ?, ?, ?, ?, ?) returning id', [
    w.url,
    JSON.stringify(w.events),
    w.secret,
    w.description,
    w.createdBy,
    w.createdAt,
  ]);
  return Number(rows[0]!.id);
}

export async function listWebhooks(read: SqlReader): Promise<WebhookRow[]> {
  return (await read.all<Record<string, unknown>>(`select ${COLUMNS} from webhook order by id`)).map(toRow);
}

export async function countWebhooks(read: SqlReader): Promise<number> {
  return Number((await read.all<{ n: number }>('select count(*) as n from webhook'))[0]?.n ?? 0);
}

export async function getWebhookWithSecret(read: SqlReader, id: number): Promise<WebhookWithSecret | undefined> {
  const rows = await read.all<Record<string, unknown>>(`select ${COLUMNS}, secret from webhook where id = ?`, [id]);
  const r = rows[0];
  return r && { ...toRow(r), secret: String(r.secret) };
}

export async function webhooksWithSecrets(read: SqlReader): Promise<WebhookWithSecret[]> {
  return (await read.all<Record<string, unknown>>(`select ${COLUMNS}, secret from webhook order by id`)).map((r) => ({ ...toRow(r), secret: String(r.secret) }));
}

export async function deleteWebhook(tx: StoreTx, id: number): Promise<boolean> {
  await exec(tx, 'delete from webhook_delivery where webhook_id = ? returning webhook_id', [id]);
  return (await exec(tx, 'delete from webhook where id = ? returning id', [id])).length === 1;
}

export async function webhookStats(read: SqlReader): Promise<Map<number, WebhookStats>> {
  const rows = await read.all<Record<string, unknown>>(
    `select webhook_id,
       sum(case when status = 'delivered' then 1 else 0 end) as delivered,
       sum(case when status = 'failed' then 1 else 0 end) as failing,
       max(updated_at) as last_at
     from webhook_delivery group by webhook_id`,
  );
  const out = new Map<number, WebhookStats>();
  for (const r of rows) out.set(Number(r.webhook_id), { delivered: Number(r.delivered), failing: Number(r.failing), lastError: null, lastAttemptAt: iso(r.last_at) });
  const errs = await read.all<Record<string, unknown>>(
    `select d.webhook_id, d.last_error from webhook_delivery d
     where d.status = 'failed' and d.updated_at = (select max(updated_at) from webhook_delivery x where x.webhook_id = d.webhook_id and x.status = 'failed')`,
  );
  for (const r of errs) {
    const s = out.get(Number(r.webhook_id));
    if (s) s.lastError = r.last_error == null ? null : String(r.last_error);
  }
  return out;
}

/** `${webhookId}:${eventId}` of the deliveries already made for these events. */
export async function deliveredPairs(read: SqlReader, eventIds: number[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (let i = 0; i < eventIds.length; i += 500) {
    const part = eventIds.slice(i, i + 500);
    const rows = await read.all<{ webhook_id: number; event_id: number }>(
      `select webhook_id, event_id from webhook_delivery where status = 'delivered' and event_id in (${part.map(() => '?').join(', ')})`,
      part,
    );
    for (const r of rows) out.add(`${Number(r.webhook_id)}:${Number(r.event_id)}`);
  }
  return out;
}

export async function recordDelivery(
  tx: StoreTx,
  d: { webhookId: number; eventId: number; delivered: boolean; status: number | null; error: string | null; now: string },
): Promise<void> {
  await exec(
    tx,
    `insert into webhook_delivery (webhook_id, event_id, status, attempts, last_status, last_error, updated_at) values (?, ?, ?, 1, ?, ?, ?)
     on conflict (webhook_id, event_id) do update set status = excluded.status, attempts = webhook_delivery.attempts + 1,
       last_status = excluded.last_status, last_error = excluded.last_error, updated_at = excluded.updated_at
     returning webhook_id`,
    [d.webhookId, d.eventId, d.delivered ? 'delivered' : 'failed', d.status, d.error, d.now],
  );
}
