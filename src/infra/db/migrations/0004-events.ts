// Events: per-handler delivery state for the outbox (the queue), the command line and role
// that made each event, and the derived counts `companyctl stats` reads.
const common = (ts: string, id: string) => [
  // Who and what made an event; stamped by the transaction that inserted it (see context.ts).
  `alter table outbox_event add column command text`,
  `alter table outbox_event add column role text`,
  `update outbox_event set command = '' where command is null`,
  `create index outbox_event_unstamped on outbox_event (id) where command is null`,
  // One row per event and handler: 'pending' -> 'done', or 'failed' (retry at next_attempt_at)
  // -> 'dead' after the last attempt. locked_until is a claim's lease.
  `create table event_delivery (
    event_id ${id} not null references outbox_event (id) on delete cascade,
    handler text not null,
    status text not null check (status in ('pending','done','failed','dead')),
    attempts integer not null default 0,
    next_attempt_at ${ts} not null,
    locked_until ${ts},
    last_error text,
    updated_at ${ts} not null,
    primary key (event_id, handler)
  )`,
  `create index event_delivery_due on event_delivery (status, next_attempt_at)`,
  // Live companies per dimension value ('' for none); kept by the "derived" event handler.
  `create table company_stat (
    dimension text not null check (dimension in ('country','industry','status')),
    value text not null,
    count integer not null,
    primary key (dimension, value)
  )`,
  ...(['country', 'industry', 'status'] as const).map(
    (d) => `insert into company_stat (dimension, value, count)
      select '${d}', coalesce(${d}, ''), count(*) from company where deleted_at is null group by coalesce(${d}, '')`,
  ),
  // The counts include every event up to here; the handler skips those.
  `insert into store_meta (key, value) select 'company_stat_as_of_event', cast(coalesce(max(id), 0) as text) from outbox_event`,
];

export const eventsSqlite = common('text', 'integer');
export const eventsPostgresql = common('timestamptz', 'bigint');
