// What `companyctl stats` shows: the derived company counts from the store; event delivery,
// imports, commands and cache from the metrics; and the alerts.
import { statSync } from 'node:fs';
import { readStats } from '../infra/db/events-store.js';
import { readMetrics, refreshAndCheck, type EventsEnv } from './events.js';
import type { Alert } from './metrics.js';

export interface StatsSnapshot {
  companies: { live: number; byStatus: Record<string, number>; byCountry: { value: string; count: number }[]; byIndustry: { value: string; count: number }[] };
  events: { pending: number; failed: number; dead: number; delivered: Record<string, number>; failedAttempts: number; deadLettered: number };
  imports: {
    runs: Record<string, number>;
    rows: { inserted: number; updated: number; unchanged: number; rejected: number };
    failedChunks: number;
    last: { jobId: number | null; state: string; rows: number; rejected: number; rejectRate: number | null; seconds: number; rowsPerSecond: number; finishedAt: string } | null;
    lastSuccessAt: string | null;
    hoursSinceLastSuccess: number | null;
  };
  commands: { total: number; failed: number; byCommand: { command: string; count: number; failed: number; avgSeconds: number }[] };
  cache: { hits: number; misses: number; hitRate: number | null };
  alerts: Alert[];
  metricsFile: string;
  at: string;
}

export async function statsSnapshot(env: EventsEnv, opts: { top?: number } = {}): Promise<StatsSnapshot> {
  const top = opts.top ?? 10;
  const { alerts } = await refreshAndCheck(env);
  const store = await env.store();
  const counts = await readStats(store.read);
  const m = await readMetrics(env);
  const now = env.now();
  const byStatus = Object.fromEntries(counts.status.map((r) => [r.value || '(none)', r.count]));
  const perCommand = new Map<string, { count: number; failed: number; seconds: number }>();
  for (const [key, v] of Object.entries(m.commands)) {
    const i = key.lastIndexOf('|');
    const c = perCommand.get(key.slice(0, i)) ?? { count: 0, failed: 0, seconds: 0 };
    c.count += v.count;
    c.seconds += v.seconds;
    if (key.slice(i + 1) !== '0') c.failed += v.count;
    perCommand.set(key.slice(0, i), c);
  }
  const byCommand = [...perCommand]
    .map(([command, c]) => ({ command, count: c.count, failed: c.failed, avgSeconds: Math.round((c.seconds / Math.max(1, c.count)) * 1000) / 1000 }))
    .sort((a, b) => b.count - a.count || a.command.localeCompare(b.command));
  const hits = fileCount(env, 'hits');
  const misses = fileCount(env, 'misses');
  const last = m.imports.last;
  return {
    companies: {
      live: counts.status.reduce((n, r) => n + r.count, 0),
      byStatus,
      byCountry: counts.country.slice(0, top).map((r) => ({ value: r.value || '(none)', count: r.count })),
      byIndustry: counts.industry.slice(0, top).map((r) => ({ value: r.value || '(none)', count: r.count })),
    },
    events: { pending: m.events.pending, failed: m.events.failed, dead: m.events.dead, delivered: m.events.delivered, failedAttempts: m.events.failedAttempts, deadLettered: m.events.deadLettered },
    imports: {
      runs: m.imports.byState,
      rows: m.imports.rows,
      failedChunks: m.imports.failedChunks,
      last: last ? { ...last, rejectRate: last.rows > 0 ? Math.round((last.rejected / last.rows) * 10000) / 10000 : null } : null,
      lastSuccessAt: m.imports.lastSuccessAt,
      hoursSinceLastSuccess: m.imports.lastSuccessAt ? Math.round(((now.getTime() - Date.parse(m.imports.lastSuccessAt)) / 3_600_000) * 100) / 100 : null,
    },
    commands: { total: byCommand.reduce((n, c) => n + c.count, 0), failed: byCommand.reduce((n, c) => n + c.failed, 0), byCommand: byCommand.slice(0, top) },
    cache: { hits, misses, hitRate: hits + misses === 0 ? null : Math.round((hits / (hits + misses)) * 10000) / 10000 },
    alerts,
    metricsFile: env.promFile(),
    at: now.toISOString(),
  };
}

function fileCount(env: EventsEnv, which: 'hits' | 'misses'): number {
  if (!env.cacheDir) return 0;
  try {
    // FileCache keeps one byte per hit or miss (see infra/cache.ts).
    return statSize(`${env.cacheDir}/${which}.count`);
  } catch {
    return 0;
  }
}

const statSize = (f: string) => statSync(f).size;
