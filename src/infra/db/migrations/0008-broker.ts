// Inbound broker messages already applied, per queue and message id: a redelivery (a consumer
// killed between commit and ack, a lost connection) changes nothing. Pruned by age.
const common = (ts: string) => [
  `create table broker_applied_message (
    queue text not null,
    message_id text not null,
    applied_at ${ts} not null,
    primary key (queue, message_id)
  )`,
  `create index broker_applied_message_at on broker_applied_message (applied_at)`,
];

export const brokerSqlite = common('text');
export const brokerPostgresql = common('timestamptz');
