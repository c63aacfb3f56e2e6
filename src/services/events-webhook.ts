// The hook for outbound webhooks. The external-API work fills this in: return a handler named
// "webhook" when at least one webhook is configured, and every new event then gets a "webhook"
// delivery with the dispatcher's retries, backoff and dead-lettering. Undefined: no delivery
// rows are made for it.
import type { Store } from '../infra/db/store.js';
import type { EventHandler } from './dispatch.js';

export interface WebhookHookDeps {
  store: () => Promise<Store>;
  now: () => Date;
}

export async function webhookHandler(deps: WebhookHookDeps): Promise<EventHandler | undefined> {
  // Filled in by the webhooks work: signed POSTs per webhook, see services/webhook.ts.
  const { webhookEventHandler } = await import('./webhook.js');
  return webhookEventHandler(deps);
}
