// Security-relevant actions as events (logins, lockouts, users, tokens, webhooks, keys, schema,
// cache, refusals): they travel the outbox like company changes, so they land in the audit
// trail with their actor. Payloads name things (users, token names, URLs, origins); they never
// carry a password, token, secret or key.
import type { Store, StoreTx } from '../infra/db/store.js';

export interface SecurityEvent {
  type: string;
  actor: string;
  /** What it acted on: user:alice, token:nightly, webhook:3, api:https://…, command:user add. */
  target: string | null;
  data?: Record<string, unknown>;
  now: Date;
}

/** Inside the transaction of the action itself, so the event commits with it or not at all. */
export async function insertSecurityEvent(tx: StoreTx, e: SecurityEvent): Promise<void> {
  const { insertOutboxEvent } = await import('../infra/db/company-write.js');
  await insertOutboxEvent(tx, {
    type: e.type,
    companyId: null,
    actor: e.actor,
    payload: { ...(e.target ? { target: e.target } : {}), ...e.data },
    createdAt: e.now.toISOString(),
  });
}

/** For an action outside the store (keychain, cache, schema): its own transaction. */
export async function recordSecurityEvent(store: Store, e: SecurityEvent): Promise<void> {
  await store.transaction((tx) => insertSecurityEvent(tx, e));
}

/** A permission refusal (exit 4): who tried which command. Best effort: the refusal stands either way. */
export async function auditRefusal(
  deps: { store: () => Promise<Store>; actor: string; now: Date; warn: (message: string) => void },
  command: string,
  reason: string,
): Promise<void> {
  try {
    await recordSecurityEvent(await deps.store(), { type: 'auth.forbidden', actor: deps.actor, target: `command:${command}`, data: { command, reason }, now: deps.now });
  } catch (e) {
    deps.warn(`could not record a refusal in the audit trail: ${String((e as Error)?.message ?? e)}`);
  }
}
