// src/infra/http.ts against a real local server: retries, backoff, Retry-After, timeouts.
import { afterEach, describe, expect, it } from 'vitest';
import { backoffDelay, HttpFailure, requestWithRetry, retryAfterMs, type AttemptInfo, type HttpOptions } from '../../src/infra/http.js';
import { startApi, type TestApi } from '../../fixtures/enrich/server.js';

let api: TestApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

const policy = (over: Partial<HttpOptions> = {}): HttpOptions => ({ timeoutMs: 1000, retries: 3, backoffMs: 20, maxBackoffMs: 100, maxRetryAfterMs: 5000, ...over });

describe('requestWithRetry', () => {
  it('retries 500 and 429, then succeeds; attempts are reported', async () => {
    api = await startApi((_r, n) => (n === 1 ? { status: 500 } : n === 2 ? { status: 429 } : { body: { ok: true } }));
    const seen: AttemptInfo[] = [];
    const res = await requestWithRetry({ url: `${api.url}/x` }, policy({ onAttempt: (a) => seen.push(a) }));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ ok: true });
    expect(res.attempts).toBe(3);
    expect(seen.map((s) => [s.status, s.retryInMs !== undefined])).toEqual([[500, true], [429, true], [200, false]]);
  });

  it('honours Retry-After (seconds) before the next attempt', async () => {
    api = await startApi((_r, n) => (n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { body: {} }));
    const res = await requestWithRetry({ url: `${api.url}/x` }, policy());
    expect(res.status).toBe(200);
    const gap = api.requests[1]!.at - api.requests[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(2000);
  });

  it('a Retry-After longer than maxRetryAfterMs fails at once instead of stalling', async () => {
    api = await startApi(() => ({ status: 503, headers: { 'retry-after': '3600' } }));
    const err = await requestWithRetry({ url: `${api.url}/x` }, policy()).catch((e) => e);
    expect(err).toBeInstanceOf(HttpFailure);
    expect(err.status).toBe(503);
    expect(api.requests).toHaveLength(1);
  });

  it('does not retry 4xx other than 429: the answer goes back to the caller', async () => {
    api = await startApi(() => ({ status: 400, body: { error: 'bad' } }));
    const res = await requestWithRetry({ url: `${api.url}/x` }, policy());
    expect(res.status).toBe(400);
    expect(res.attempts).toBe(1);
    expect(api.requests).toHaveLength(1);
  });

  it('gives up after the last retry with the last status', async () => {
    api = await startApi(() => ({ status: 502 }));
    const err = await requestWithRetry({ url: `${api.url}/x` }, policy({ retries: 2 })).catch((e) => e);
    expect(err).toBeInstanceOf(HttpFailure);
    expect(err).toMatchObject({ kind: 'status', status: 502, attempts: 3 });
    expect(err.message).toBe('HTTP 502 (after 3 attempts)');
    expect(api.requests).toHaveLength(3);
  });

  it('times out a slow answer and retries it; network errors are retried too', async () => {
    api = await startApi((_r, n) => (n === 1 ? { delayMs: 500, body: {} } : n === 2 ? { destroy: true } : { body: { late: false } }));
    const seen: AttemptInfo[] = [];
    const res = await requestWithRetry({ url: `${api.url}/x` }, policy({ timeoutMs: 150, onAttempt: (a) => seen.push(a) }));
    expect(JSON.parse(res.body)).toEqual({ late: false });
    expect(seen[0]!.error).toBe('no answer within 150 ms');
    expect(seen[1]!.error).toMatch(/connection reset|network error/);
  });

  it('a refused connection ends as a network failure', async () => {
    api = await startApi(() => ({}));
    const url = api.url;
    await api.close();
    api = undefined;
    const err = await requestWithRetry({ url: `${url}/x` }, policy({ retries: 1 })).catch((e) => e);
    expect(err).toMatchObject({ kind: 'network', attempts: 2 });
    expect(err.message).toContain('connection refused');
  });

  it('the backoff grows exponentially with jitter, capped', () => {
    const p = { backoffMs: 100, maxBackoffMs: 1000 };
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, p, () => 0))).toEqual([50, 100, 200, 400, 500]);
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, p, () => 1))).toEqual([100, 200, 400, 800, 1000]);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs(new Date(Date.UTC(2030, 0, 1, 0, 0, 10)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(10_000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });
});
