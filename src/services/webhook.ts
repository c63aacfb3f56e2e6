// Outbound webhooks: what an admin registers (URL, event patterns, a signing secret kept in the
// store), how a body is signed, and the delivery the event dispatcher calls as its "webhook"
// handler. Each dispatch attempt sends once per webhook; the dispatcher owns retries with
// backoff and dead letters, and this module remembers which webhooks already got an event, so
// a retry reaches only the ones that missed it. Secrets never appear in messages or listings.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CompanyctlError } from '../errors.js';
import type { Store } from '../infra/db/store.js';
import type { WebhookRow, WebhookWithSecret } from '../infra/db/webhook-store.js';
import { redactText } from './audit-redact.js';
import { insertSecurityEvent } from './security-events.js';

const db = () => import('../infra/db/webhook-store.js');

export const SIGNATURE_HEADER = 'x-companyctl-signature';
export const SIGNATURE_TOLERANCE_SECONDS = 300;
export const DELIVERY_TIMEOUT_MS = 10_000;

export interface WebhookDeps {
  store: () => Promise<Store>;
  now: () => Date;
  actor: string;
}

/** An outbox event as the dispatcher hands it over. */
export interface WebhookEvent {
  id: number;
  type: string;
  companyId: number | null;
  actor: string;
  payload: Record<string, unknown>;
  createdAt: string;
}

// ---- registration ----

const PATTERN = /^(\*|[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*(\.\*)?)$/;

export function parseEventPatterns(spec: string): string[] {
  const patterns = [...new Set(spec.split(',').map((p) => p.trim()).filter(Boolean))];
  const bad = patterns.find((p) => !PATTERN.test(p));
  if (bad !== undefined || patterns.length === 0) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `--events: ${JSON.stringify(bad ?? spec)} is not an event type or pattern`, {
      field: '--events',
      hint: 'e.g. --events "company.*,import.completed" or --events "*"',
    });
  }
  return patterns;
}

export function matchesEvent(patterns: string[], type: string): boolean {
  return patterns.some((p) => p === '*' || p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))));
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

export function checkWebhookUrl(raw: string, allowHttp = false): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `${JSON.stringify(raw)} is not a URL`, { field: 'url' });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', 'a webhook URL must be http(s)', { field: 'url' });
  if (url.username || url.password) {
    throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', 'a webhook URL must not hold credentials', { field: 'url', hint: 'receivers check the signature header instead' });
  }
  if (url.protocol === 'http:' && !allowHttp && !LOOPBACK.has(url.hostname)) {
    throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', 'a webhook URL must use https (event bodies hold company data)', {
      field: 'url',
      hint: 'pass --allow-http to send over plain http anyway',
    });
  }
  return url.href;
}

export function checkSecret(secret: string): string {
  const s = secret.replace(/\r?\n$/, '');
  if (s.length < 16 || s.length > 256 || /\s/.test(s)) {
    throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', 'the webhook secret must be 16 to 256 characters without white space', { field: '--secret-stdin' });
  }
  return s;
}

export const generateSecret = () => `whsec_${randomBytes(32).toString('base64url')}`;

export async function addWebhook(
  deps: WebhookDeps,
  input: { url: string; events: string[]; secret?: string; description?: string; allowHttp?: boolean },
): Promise<{ webhook: WebhookRow; generatedSecret?: string }> {
  const url = checkWebhookUrl(input.url, input.allowHttp);
  const generatedSecret = input.secret === undefined ? generateSecret() : undefined;
  const secret = input.secret === undefined ? generatedSecret! : checkSecret(input.secret);
  const store = await deps.store();
  const w = await db();
  const createdAt = deps.now().toISOString();
  const description = input.description?.trim() || null;
  const id = await store.transaction(async (tx) => {
    const id = await w.insertWebhook(tx, { url, events: input.events, secret, description, createdBy: deps.actor, createdAt });
    await insertSecurityEvent(tx, { type: 'webhook.added', actor: deps.actor, target: `webhook:${id}`, data: { id, url: redactText(url), events: input.events }, now: deps.now() });
    return id;
  });
  return { webhook: { id, url, events: input.events, description, createdBy: deps.actor, createdAt }, generatedSecret };
}

export interface WebhookInfo extends WebhookRow {
  delivered: number;
  failing: number;
  lastError: string | null;
  lastAttemptAt: string | null;
}

export async function listWebhooks(deps: Pick<WebhookDeps, 'store'>): Promise<WebhookInfo[]> {
  const store = await deps.store();
  const w = await db();
  const stats = await w.webhookStats(store.read);
  return (await w.listWebhooks(store.read)).map((h) => ({ ...h, delivered: 0, failing: 0, lastError: null, lastAttemptAt: null, ...stats.get(h.id) }));
}

const notFound = (id: number) => new CompanyctlError('COMPANYCTL_NOT_FOUND', `no webhook with id ${id}`, { hint: 'list webhooks with "companyctl webhook list"' });

export async function removeWebhook(deps: Pick<WebhookDeps, 'store' | 'actor' | 'now'>, id: number): Promise<void> {
  const store = await deps.store();
  const w = await db();
  const removed = await store.transaction(async (tx) => {
    const hook = await w.getWebhookWithSecret(tx.read, id);
    if (!hook || !(await w.deleteWebhook(tx, id))) return false;
    await insertSecurityEvent(tx, { type: 'webhook.removed', actor: deps.actor, target: `webhook:${id}`, data: { id, url: redactText(hook.url), events: hook.events }, now: deps.now() });
    return true;
  });
  if (!removed) throw notFound(id);
}

// ---- signing ----

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the secret>`. */
export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** What a receiver does: recompute the HMAC over the raw body, compare in constant time, refuse old timestamps. */
export function verifySignature(secret: string, header: string | undefined, body: string, nowSeconds: number, toleranceSeconds = SIGNATURE_TOLERANCE_SECONDS): boolean {
  if (!header) return false;
  const parts = new Map(header.split(',').map((kv) => kv.trim().split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const given = parts.get('v1');
  if (!Number.isInteger(t) || !given || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const want = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  const got = Buffer.from(given, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

// ---- delivery ----

export interface SendResult {
  ok: boolean;
  status: number | null;
  error: string | null;
  ms: number;
}

export function webhookBody(event: WebhookEvent): string {
  return JSON.stringify({ id: event.id, type: event.type, createdAt: event.createdAt, actor: event.actor, companyId: event.companyId, data: event.payload });
}

/** One signed POST; a 2xx is success, anything else (3xx included: no redirects) a failure. */
export async function sendToWebhook(hook: WebhookWithSecret, event: WebhookEvent, opts: { now: () => Date; timeoutMs?: number }): Promise<SendResult> {
  const { requestWithRetry, HttpFailure } = await import('../infra/http.js');
  const body = webhookBody(event);
  const started = Date.now();
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'companyctl/0.1.0 (webhook)',
    'x-companyctl-event': event.type,
    'x-companyctl-event-id': String(event.id),
    'x-companyctl-webhook-id': String(hook.id),
    [SIGNATURE_HEADER]: signatureHeader(hook.secret, body, Math.floor(opts.now().getTime() / 1000)),
  };
  try {
    const res = await requestWithRetry(
      { method: 'POST', url: hook.url, headers, body, redirect: 'manual' },
      { timeoutMs: opts.timeoutMs ?? DELIVERY_TIMEOUT_MS, retries: 0, backoffMs: 0, maxBackoffMs: 0, maxRetryAfterMs: 0, maxBodyBytes: 64 * 1024 },
    );
    const ok = res.status >= 200 && res.status < 300;
    return { ok, status: res.status, error: ok ? null : `HTTP ${res.status}`, ms: Date.now() - started };
  } catch (e) {
    if (e instanceof HttpFailure) return { ok: false, status: e.status ?? null, error: e.message, ms: Date.now() - started };
    throw e;
  }
}

/** `webhook test <id>`: a signed `webhook.test` event, sent once, now. */
export async function testWebhook(deps: WebhookDeps, id: number, opts: { timeoutMs?: number } = {}): Promise<SendResult & { id: number; url: string }> {
  const store = await deps.store();
  const hook = await (await db()).getWebhookWithSecret(store.read, id);
  if (!hook) throw notFound(id);
  const event: WebhookEvent = { id: 0, type: 'webhook.test', companyId: null, actor: deps.actor, payload: { webhookId: id, message: 'a test delivery from companyctl' }, createdAt: deps.now().toISOString() };
  const r = await sendToWebhook(hook, event, { now: deps.now, timeoutMs: opts.timeoutMs });
  return { id, url: hook.url, ...r };
}

export interface WebhookDispatchHandler {
  name: 'webhook';
  handle(batch: { event: WebhookEvent; attempt: number }[]): Promise<{ failed?: Map<number, string> }>;
}

/**
 * The dispatcher's "webhook" handler, or undefined when no webhook is configured. For each
 * event (oldest first) and each webhook whose patterns match and that existed when the event
 * was made: send, unless it was delivered before. A webhook that fails is not tried again in
 * the same batch (it is likely down); its events fail with the reason and are retried later.
 */
export async function webhookEventHandler(deps: Pick<WebhookDeps, 'store' | 'now'> & { timeoutMs?: number; concurrency?: number }): Promise<WebhookDispatchHandler | undefined> {
  const store = await deps.store();
  const w = await db();
  if ((await w.countWebhooks(store.read)) === 0) return undefined;
  return {
    name: 'webhook',
    async handle(batch) {
      const hooks = await w.webhooksWithSecrets(store.read);
      const events = batch.map((d) => d.event);
      const done = await w.deliveredPairs(store.read, events.map((e) => e.id));
      const failed = new Map<number, string>();
      const { default: PQueue } = await import('p-queue');
      const queue = new PQueue({ concurrency: deps.concurrency ?? 4 });
      const results: { webhookId: number; eventId: number; delivered: boolean; status: number | null; error: string | null }[] = [];
      const fail = (eventId: number, reason: string) => failed.set(eventId, failed.has(eventId) ? `${failed.get(eventId)}; ${reason}` : reason);
      // One webhook's events in order; different webhooks in parallel.
      for (const hook of hooks) {
        const mine = events.filter((e) => matchesEvent(hook.events, e.type) && hook.createdAt <= e.createdAt && !done.has(`${hook.id}:${e.id}`));
        if (mine.length === 0) continue;
        void queue.add(async () => {
          let down: string | undefined;
          for (const e of mine) {
            if (down) {
              fail(e.id, `webhook ${hook.id}: not tried, it failed earlier in this batch (${down})`);
              continue;
            }
            const r = await sendToWebhook(hook, e, { now: deps.now, timeoutMs: deps.timeoutMs });
            results.push({ webhookId: hook.id, eventId: e.id, delivered: r.ok, status: r.status, error: r.error });
            if (!r.ok) {
              down = r.error ?? 'failed';
              fail(e.id, `webhook ${hook.id} (${new URL(hook.url).host}): ${r.error}`);
            }
          }
        });
      }
      await queue.onIdle();
      if (results.length > 0) {
        const now = deps.now().toISOString();
        await store.transaction(async (tx) => {
          for (const r of results) await w.recordDelivery(tx, { ...r, now });
        });
      }
      return { failed };
    },
  };
}
