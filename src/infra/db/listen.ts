// LISTEN on the store's notification channels (PostgreSQL), on a connection of its own that
// comes back by itself: a lost connection is reported, then retried with backoff; each (re)connect
// is reported with its time, since notifications sent while it was away are lost.
import type { StoreLocation } from './location.js';
import { openPgClient } from './store.js';

export interface ListenHandlers {
  notify(channel: string, payload: string | undefined): void;
  /** Listening (again) since `at` (epoch ms): anything sent before may have been missed. */
  connected(at: number): void;
  lost(error: unknown): void;
}

export interface Listener {
  close(): Promise<void>;
}

export function listen(loc: StoreLocation, channels: string[], on: ListenHandlers, retryDelayMs: (attempt: number) => number): Listener {
  let closed = false;
  let client: import('pg').Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  let attempt = 0;
  const connect = async () => {
    timer = undefined;
    if (closed) return;
    let c: import('pg').Client | undefined;
    try {
      c = await openPgClient(loc);
      for (const ch of channels) await c.query(`listen ${ch}`);
    } catch (e) {
      await c?.end().catch(() => undefined);
      on.lost(e);
      return retry();
    }
    if (closed) return void (await c.end().catch(() => undefined));
    client = c;
    attempt = 0;
    let gone = false;
    const drop = (e: unknown) => {
      if (gone || closed) return;
      gone = true;
      client = undefined;
      c!.end().catch(() => undefined);
      on.lost(e);
      retry();
    };
    c.on('notification', (n) => on.notify(n.channel, n.payload));
    c.on('error', drop);
    c.on('end', () => drop(new Error('the notification connection closed')));
    on.connected(Date.now());
  };
  const retry = () => {
    if (closed) return;
    timer = setTimeout(() => void connect(), retryDelayMs(++attempt));
  };
  void connect();
  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await client?.end().catch(() => undefined);
    },
  };
}
