// Outbound HTTP with the global fetch: a timeout per attempt, retries with exponential backoff
// and jitter on 429, 5xx and network errors, Retry-After honoured; other 4xx are answers, not
// failures, and go back to the caller at once. Each attempt runs through `schedule` (a
// rate-limited queue), so retries count against the rate limit too. Messages never carry
// request headers (API keys live there).

export interface HttpRequest {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
  /** 'manual': a 3xx is the answer (webhooks must not be re-posted elsewhere). Default 'follow'. */
  redirect?: 'follow' | 'manual';
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  body: string;
  /** Attempts made, including the one that answered. */
  attempts: number;
}

export interface RetryPolicy {
  timeoutMs: number;
  /** Retries after the first attempt. */
  retries: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** A Retry-After longer than this ends the retries instead of stalling the caller. */
  maxRetryAfterMs: number;
}

export interface AttemptInfo {
  attempt: number;
  status?: number;
  error?: string;
  /** Set when another attempt follows, after this many ms. */
  retryInMs?: number;
}

export interface HttpOptions extends RetryPolicy {
  schedule?: <T>(fn: () => Promise<T>) => Promise<T>;
  signal?: AbortSignal;
  maxBodyBytes?: number;
  random?: () => number;
  onAttempt?: (a: AttemptInfo) => void;
}

export type HttpFailureKind = 'status' | 'network' | 'timeout' | 'body-too-large';

/** Retries are exhausted (or not allowed): the last status or network error. */
export class HttpFailure extends Error {
  constructor(
    message: string,
    readonly kind: HttpFailureKind,
    readonly attempts: number,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'HttpFailure';
  }
}

export const isRetryableStatus = (status: number) => status === 429 || status >= 500;

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** Exponential backoff with "equal jitter": between half and all of base * 2^(n-1), capped. */
export function backoffDelay(retry: number, policy: Pick<RetryPolicy, 'backoffMs' | 'maxBackoffMs'>, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** (retry - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

export async function requestWithRetry(req: HttpRequest, opts: HttpOptions): Promise<HttpResponse> {
  const schedule = opts.schedule ?? ((fn) => fn());
  const random = opts.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    opts.signal?.throwIfAborted();
    let res: Omit<HttpResponse, 'attempts'> | undefined;
    let failure: HttpFailure;
    try {
      res = await schedule(() => attemptOnce(req, opts));
    } catch (e) {
      if (!(e instanceof HttpFailure)) throw e;
      if (e.kind === 'body-too-large') throw withAttempts(e, attempt);
      failure = withAttempts(e, attempt);
    }
    let wait: number | undefined;
    if (res) {
      if (!isRetryableStatus(res.status)) {
        opts.onAttempt?.({ attempt, status: res.status });
        return { ...res, attempts: attempt };
      }
      failure = new HttpFailure(`HTTP ${res.status}`, 'status', attempt, res.status);
      wait = retryAfterMs(res.headers.get('retry-after'));
      if (wait !== undefined && wait > opts.maxRetryAfterMs && attempt <= opts.retries) {
        opts.onAttempt?.({ attempt, status: res.status });
        throw new HttpFailure(`HTTP ${res.status}, asked to retry after ${Math.round(wait / 1000)} s (more than maxRetryAfterMs)`, 'status', attempt, res.status);
      }
    }
    const error = failure!.kind === 'status' ? undefined : failure!.message;
    if (attempt > opts.retries) {
      opts.onAttempt?.({ attempt, status: failure!.status, error });
      const tries = attempt === 1 ? '' : ` (after ${attempt} attempts)`;
      throw new HttpFailure(`${failure!.message}${tries}`, failure!.kind, attempt, failure!.status);
    }
    const delay = wait ?? backoffDelay(attempt, opts, random);
    opts.onAttempt?.({ attempt, status: failure!.status, error, retryInMs: delay });
    await sleep(delay, opts.signal);
  }
}

function withAttempts(e: HttpFailure, attempts: number): HttpFailure {
  return e.attempts === attempts ? e : new HttpFailure(e.message, e.kind, attempts, e.status);
}

/** One attempt: a status and body, or an HttpFailure for timeouts and network errors. */
async function attemptOnce(req: HttpRequest, opts: HttpOptions): Promise<Omit<HttpResponse, 'attempts'>> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  try {
    const res = await fetch(req.url, { method: req.method ?? 'GET', headers: req.headers, body: req.body, signal, redirect: req.redirect ?? 'follow' });
    const body = await readBody(res, opts.maxBodyBytes ?? 10 * 1024 * 1024);
    return { status: res.status, headers: res.headers, body };
  } catch (e) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? e;
    if (e instanceof HttpFailure) throw new HttpFailure(e.message, e.kind, 0);
    if (timeout.aborted) throw new HttpFailure(`no answer within ${opts.timeoutMs} ms`, 'timeout', 0);
    throw new HttpFailure(networkReason(e), 'network', 0);
  }
}

async function readBody(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (declared > max) {
    await res.body?.cancel();
    throw new HttpFailure(`response body of ${declared} bytes is larger than ${max}`, 'body-too-large', 0);
  }
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new HttpFailure(`response body is larger than ${max} bytes`, 'body-too-large', 0);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function networkReason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } })?.cause;
  const code = cause?.code ?? cause?.errors?.[0]?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code) return `network error (${code})`;
  return `network error (${(cause?.message ?? (e as Error)?.message ?? String(e)).split('\n')[0]})`;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), ms);
    const onAbort = () => (clearTimeout(t), reject(signal!.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
