// Monitoring: counters and timings kept in the state folder (commands by name and exit code,
// imports, events, cache), rendered as a Prometheus text file after every change, and alert
// thresholds evaluated over them. Services never print.
import type { MetricFamily } from '../infra/metrics-file.js';

export interface ImportRun {
  jobId: number | null;
  state: string;
  rows: number;
  rejected: number;
  seconds: number;
  rowsPerSecond: number;
  finishedAt: string;
}

export interface MetricsState {
  commands: Record<string, { count: number; seconds: number }>;
  imports: {
    byState: Record<string, number>;
    rows: { inserted: number; updated: number; unchanged: number; rejected: number };
    failedChunks: number;
    /** The totals last counted per job (the newest 100), so a resumed job is not counted twice. */
    jobTotals: Record<string, { inserted: number; updated: number; unchanged: number; rejected: number }>;
    last: ImportRun | null;
    lastSuccessAt: string | null;
  };
  events: {
    pending: number;
    failed: number;
    dead: number;
    countedAt: string | null;
    delivered: Record<string, number>;
    failedAttempts: number;
    deadLettered: number;
    byType: Record<string, number>;
  };
  /** `companyctl worker` processes of this host: jobs run by kind and final state, cache sync, event lag. */
  worker: {
    jobs: Record<string, number>;
    cacheDrops: number;
    cacheRefills: number;
    /** Age of the oldest event not yet delivered to every handler, when last measured (0: none waits). */
    oldestPendingSeconds: number | null;
    heartbeatAt: string | null;
  };
  /** Alerts firing now, by name, since when. */
  alerts: Record<string, { since: string; value: number; threshold: number; message: string }>;
  /** Event ids the metrics handler already counted (the newest 1000): idempotence. */
  seenEventIds: number[];
  /** How far commands.log has been counted. */
  commandLogOffset: number;
  updatedAt: string | null;
}

export const emptyMetrics = (): MetricsState => ({
  commands: {},
  imports: { byState: {}, rows: { inserted: 0, updated: 0, unchanged: 0, rejected: 0 }, failedChunks: 0, jobTotals: {}, last: null, lastSuccessAt: null },
  events: { pending: 0, failed: 0, dead: 0, countedAt: null, delivered: {}, failedAttempts: 0, deadLettered: 0, byType: {} },
  worker: { jobs: {}, cacheDrops: 0, cacheRefills: 0, oldestPendingSeconds: null, heartbeatAt: null },
  alerts: {},
  seenEventIds: [],
  commandLogOffset: 0,
  updatedAt: null,
});

export interface AlertThresholds {
  /** Rejected / rows of the last import above this (0..1). */
  rejectRate?: number;
  /** Last import took longer than this many seconds. */
  importSeconds?: number;
  /** More dead event deliveries than this (default 0: any dead delivery alerts). */
  deadEvents?: number;
  /** No successful import for more than this many hours (or never). */
  hoursSinceImport?: number;
}

export interface Alert {
  name: keyof AlertThresholds;
  value: number;
  threshold: number;
  message: string;
}

export function evaluateAlerts(s: MetricsState, t: AlertThresholds, now: Date): Alert[] {
  const out: Alert[] = [];
  const last = s.imports.last;
  if (t.rejectRate !== undefined && last && last.rows > 0) {
    const rate = last.rejected / last.rows;
    if (rate > t.rejectRate) {
      out.push({ name: 'rejectRate', value: round(rate), threshold: t.rejectRate, message: `import ${last.jobId ?? ''} rejected ${pct(rate)} of its rows (threshold ${pct(t.rejectRate)})`.replace('  ', ' ') });
    }
  }
  if (t.importSeconds !== undefined && last && last.seconds > t.importSeconds) {
    out.push({ name: 'importSeconds', value: last.seconds, threshold: t.importSeconds, message: `the last import took ${last.seconds} s (threshold ${t.importSeconds} s)` });
  }
  const deadMax = t.deadEvents ?? 0;
  if (s.events.dead > deadMax) {
    out.push({ name: 'deadEvents', value: s.events.dead, threshold: deadMax, message: `${s.events.dead} event deliveries are dead (threshold ${deadMax}); see "companyctl events list --dead"` });
  }
  if (t.hoursSinceImport !== undefined) {
    const at = s.imports.lastSuccessAt ? Date.parse(s.imports.lastSuccessAt) : NaN;
    const hours = Number.isNaN(at) ? Infinity : (now.getTime() - at) / 3_600_000;
    if (hours > t.hoursSinceImport) {
      out.push({
        name: 'hoursSinceImport',
        value: hours === Infinity ? -1 : round(hours),
        threshold: t.hoursSinceImport,
        message: Number.isFinite(hours) ? `no successful import for ${round(hours)} h (threshold ${t.hoursSinceImport} h)` : `no successful import yet (threshold ${t.hoursSinceImport} h)`,
      });
    }
  }
  return out;
}

/** Update the firing set; returns the alerts that were not firing before (to raise as events). */
export function updateFiring(s: MetricsState, alerts: Alert[], now: Date): Alert[] {
  const fresh = alerts.filter((a) => !s.alerts[a.name]);
  const next: MetricsState['alerts'] = {};
  for (const a of alerts) next[a.name] = { since: s.alerts[a.name]?.since ?? now.toISOString(), value: a.value, threshold: a.threshold, message: a.message };
  s.alerts = next;
  return fresh;
}

const round = (n: number) => Math.round(n * 1000) / 1000;
const pct = (n: number) => `${round(n * 100)}%`;

export function recordCommand(s: MetricsState, command: string, exitCode: number, seconds: number): void {
  const key = `${command}|${exitCode}`;
  const c = (s.commands[key] ??= { count: 0, seconds: 0 });
  c.count++;
  c.seconds = round(c.seconds + seconds);
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** Count one event (import summaries feed the import metrics). False if already counted. */
export function recordEvent(s: MetricsState, e: { id: number; type: string; createdAt: string; payload: Record<string, unknown> }): boolean {
  if (s.seenEventIds.includes(e.id)) return false;
  s.seenEventIds.push(e.id);
  if (s.seenEventIds.length > 1000) s.seenEventIds.splice(0, s.seenEventIds.length - 1000);
  s.events.byType[e.type] = (s.events.byType[e.type] ?? 0) + 1;
  const p = e.payload ?? {};
  if (e.type === 'import.chunk_failed') s.imports.failedChunks++;
  else if (e.type.startsWith('import.') && typeof p.state === 'string') {
    s.imports.byState[p.state] = (s.imports.byState[p.state] ?? 0) + 1;
    // A summary holds the job's totals: after a resume, add only what is new since the last one.
    const key = String(p.jobId ?? `event-${e.id}`);
    const seen = s.imports.jobTotals[key] ?? { inserted: 0, updated: 0, unchanged: 0, rejected: 0 };
    const totals = { inserted: num(p.inserted), updated: num(p.updated), unchanged: num(p.unchanged), rejected: num(p.rejected) };
    for (const k of ['inserted', 'updated', 'unchanged', 'rejected'] as const) s.imports.rows[k] += Math.max(0, totals[k] - seen[k]);
    s.imports.jobTotals[key] = totals;
    const keys = Object.keys(s.imports.jobTotals);
    for (const k of keys.slice(0, Math.max(0, keys.length - 100))) delete s.imports.jobTotals[k];
    s.imports.last = {
      jobId: typeof p.jobId === 'number' ? p.jobId : null,
      state: p.state,
      rows: num(p.rows),
      rejected: num(p.rejected),
      seconds: num(p.seconds),
      rowsPerSecond: num(p.rowsPerSecond),
      finishedAt: e.createdAt,
    };
    if (p.state === 'completed' || p.state === 'completed_with_rejects') {
      if (!s.imports.lastSuccessAt || s.imports.lastSuccessAt < e.createdAt) s.imports.lastSuccessAt = e.createdAt;
    }
  }
  return true;
}

export interface CacheCounters {
  hits: number;
  misses: number;
}

const ALERT_NAMES: (keyof AlertThresholds)[] = ['rejectRate', 'importSeconds', 'deadEvents', 'hoursSinceImport'];

export function metricFamilies(s: MetricsState, cache: CacheCounters | undefined, now: Date): MetricFamily[] {
  const cmds = Object.entries(s.commands).map(([k, v]) => {
    const i = k.lastIndexOf('|');
    return { command: k.slice(0, i), exit: k.slice(i + 1), ...v };
  });
  const perCommand = new Map<string, { count: number; seconds: number }>();
  for (const c of cmds) {
    const t = perCommand.get(c.command) ?? { count: 0, seconds: 0 };
    perCommand.set(c.command, { count: t.count + c.count, seconds: round(t.seconds + c.seconds) });
  }
  const last = s.imports.last;
  const seconds = (iso: string) => Math.round(Date.parse(iso) / 1000);
  return [
    {
      name: 'companyctl_commands_total',
      help: 'companyctl commands run, by command and exit code.',
      type: 'counter',
      samples: cmds.map((c) => ({ labels: { command: c.command, exit_code: c.exit }, value: c.count })),
    },
    {
      name: 'companyctl_command_duration_seconds_total',
      help: 'Wall time spent in companyctl commands, by command.',
      type: 'counter',
      samples: [...perCommand].map(([command, t]) => ({ labels: { command }, value: t.seconds })),
    },
    {
      name: 'companyctl_import_rows_total',
      help: 'Rows handled by imports, by result.',
      type: 'counter',
      samples: (['inserted', 'updated', 'unchanged', 'rejected'] as const).map((r) => ({ labels: { result: r }, value: s.imports.rows[r] })),
    },
    {
      name: 'companyctl_imports_total',
      help: 'Import runs finished, by final state.',
      type: 'counter',
      samples: Object.entries(s.imports.byState).map(([state, n]) => ({ labels: { state }, value: n })),
    },
    { name: 'companyctl_import_failed_chunks_total', help: 'Import chunks that failed and rolled back.', type: 'counter', samples: [{ value: s.imports.failedChunks }] },
    { name: 'companyctl_import_last_duration_seconds', help: 'Duration of the last import run.', type: 'gauge', samples: last ? [{ value: last.seconds }] : [] },
    { name: 'companyctl_import_last_rows_per_second', help: 'Throughput of the last import run.', type: 'gauge', samples: last ? [{ value: last.rowsPerSecond }] : [] },
    {
      name: 'companyctl_import_last_reject_ratio',
      help: 'Rejected rows / rows of the last import run.',
      type: 'gauge',
      samples: last ? [{ value: last.rows > 0 ? round(last.rejected / last.rows) : 0 }] : [],
    },
    {
      name: 'companyctl_import_last_success_timestamp_seconds',
      help: 'Unix time of the last import that completed (with or without rejects).',
      type: 'gauge',
      samples: s.imports.lastSuccessAt ? [{ value: seconds(s.imports.lastSuccessAt) }] : [],
    },
    { name: 'companyctl_cache_hits_total', help: 'File cache hits of company reads.', type: 'counter', samples: cache ? [{ value: cache.hits }] : [] },
    { name: 'companyctl_cache_misses_total', help: 'File cache misses of company reads.', type: 'counter', samples: cache ? [{ value: cache.misses }] : [] },
    {
      name: 'companyctl_events',
      help: 'Event deliveries by state, as last counted in the store.',
      type: 'gauge',
      samples: (['pending', 'failed', 'dead'] as const).map((state) => ({ labels: { state }, value: s.events[state] })),
    },
    {
      name: 'companyctl_events_counted_timestamp_seconds',
      help: 'Unix time companyctl_events was last counted.',
      type: 'gauge',
      samples: s.events.countedAt ? [{ value: seconds(s.events.countedAt) }] : [],
    },
    {
      name: 'companyctl_event_deliveries_total',
      help: 'Event deliveries completed, by handler.',
      type: 'counter',
      samples: Object.entries(s.events.delivered).map(([handler, n]) => ({ labels: { handler }, value: n })),
    },
    { name: 'companyctl_event_delivery_failures_total', help: 'Failed delivery attempts (retried later or dead-lettered).', type: 'counter', samples: [{ value: s.events.failedAttempts }] },
    { name: 'companyctl_events_dead_lettered_total', help: 'Deliveries that ran out of attempts.', type: 'counter', samples: [{ value: s.events.deadLettered }] },
    {
      name: 'companyctl_events_total',
      help: 'Events counted by the metrics handler, by type.',
      type: 'counter',
      samples: Object.entries(s.events.byType).map(([type, n]) => ({ labels: { type }, value: n })),
    },
    {
      name: 'companyctl_alert_firing',
      help: 'Whether an alert threshold is exceeded (1) or not (0).',
      type: 'gauge',
      samples: ALERT_NAMES.map((alert) => ({ labels: { alert }, value: s.alerts[alert] ? 1 : 0 })),
    },
    {
      name: 'companyctl_worker_jobs_total',
      help: 'Queued jobs run by this host\'s workers, by kind and final state.',
      type: 'counter',
      samples: Object.entries(s.worker.jobs).map(([k, n]) => {
        const [kind, state] = k.split('|');
        return { labels: { kind: kind!, state: state! }, value: n };
      }),
    },
    { name: 'companyctl_worker_cache_drops_total', help: 'Cache entries this host\'s workers dropped on change notifications.', type: 'counter', samples: [{ value: s.worker.cacheDrops }] },
    { name: 'companyctl_worker_cache_refills_total', help: 'Cache entries this host\'s workers refilled with the new version.', type: 'counter', samples: [{ value: s.worker.cacheRefills }] },
    {
      name: 'companyctl_events_oldest_pending_seconds',
      help: 'Age of the oldest event not yet delivered to every handler (0: none), as a worker last measured it.',
      type: 'gauge',
      samples: s.worker.oldestPendingSeconds === null ? [] : [{ value: s.worker.oldestPendingSeconds }],
    },
    {
      name: 'companyctl_worker_heartbeat_timestamp_seconds',
      help: 'Unix time a worker of this host last wrote its metrics.',
      type: 'gauge',
      samples: s.worker.heartbeatAt ? [{ value: seconds(s.worker.heartbeatAt) }] : [],
    },
    { name: 'companyctl_metrics_updated_timestamp_seconds', help: 'Unix time this file was written.', type: 'gauge', samples: [{ value: Math.round(now.getTime() / 1000) }] },
  ];
}

/** Fill in what an older state file lacks. */
export function normaliseMetrics(s: MetricsState): MetricsState {
  const e = emptyMetrics();
  s.imports = { ...e.imports, ...s.imports, rows: { ...e.imports.rows, ...s.imports?.rows } };
  s.events = { ...e.events, ...s.events };
  s.worker = { ...e.worker, ...s.worker };
  s.commands ??= {};
  s.alerts ??= {};
  s.seenEventIds ??= [];
  s.commandLogOffset ??= 0;
  return s;
}
