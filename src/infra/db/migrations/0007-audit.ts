// The audit trail in the store: one hash chain for every host (the per-host files are copies of
// their host's entries), the chain's head, and per host log what it held before the store kept
// the trail. Entries are append-only: triggers refuse updates and deletes.
const GENESIS = '0'.repeat(64);

const common = (id: string) => [
  `create table audit_entry (
    seq ${id} primary key,
    time text not null,
    actor text not null,
    action text not null,
    target text,
    event_id ${id},
    log_id text not null,
    line text not null,
    hash text not null
  )`,
  `create index audit_entry_event on audit_entry (event_id)`,
  `create index audit_entry_log on audit_entry (log_id, seq)`,
  `create index audit_entry_time on audit_entry (time)`,
  // One row per host's log file: the lines it held when it first wrote to the store (kept only
  // by their keyless chain, so anchored here by count and last hash).
  `create table audit_log_file (
    log_id text primary key,
    legacy_lines integer not null,
    legacy_hash text not null,
    anchored_at text not null
  )`,
  `insert into store_meta (key, value) values ('audit_head', '0:${GENESIS}')`,
];

export const auditSqlite = [
  ...common('integer'),
  `create trigger audit_entry_no_update before update on audit_entry begin select raise(abort, 'audit entries are append-only'); end`,
  `create trigger audit_entry_no_delete before delete on audit_entry begin select raise(abort, 'audit entries are append-only'); end`,
];

export const auditPostgresql = [
  ...common('bigint'),
  `create function audit_entry_append_only() returns trigger language plpgsql as $$ begin raise exception 'audit entries are append-only'; end $$`,
  `create trigger audit_entry_no_change before update or delete or truncate on audit_entry for each statement execute function audit_entry_append_only()`,
];
