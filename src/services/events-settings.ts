// The events, audit, metrics and alert settings of the config file, checked in full when used.
import { CompanyctlError } from '../errors.js';
import type { DispatchSettings } from './dispatch.js';
import type { AlertThresholds } from './metrics.js';

export interface EventsConfig {
  /** Deliver events right after each command that wrote (default true); false: only `events drain`. */
  dispatchAfterCommand?: boolean;
  maxAttempts?: number;
  backoffSeconds?: number;
  maxBackoffSeconds?: number;
  leaseSeconds?: number;
  concurrency?: number;
  batchSize?: number;
  /** At most this many deliveries after a command (the rest: the next command or `events drain`). */
  afterCommandLimit?: number;
  /** Re-cache written companies (cache rebuild) instead of only dropping their entries. */
  warmCache?: boolean;
  /** While a worker is alive, a command that wrote leaves its events to it (default true). */
  leaveToWorker?: boolean;
  /** Delivered events older than this many days are removed by `events drain` (and a worker). */
  retentionDays?: number;
}

export interface EventsSettings {
  dispatchAfterCommand: boolean;
  leaveToWorker: boolean;
  afterCommandLimit: number;
  warmCache: boolean;
  /** Days after which delivered events are pruned automatically; undefined: kept. */
  retentionDays?: number;
  dispatch: DispatchSettings;
  auditMaxBytes: number;
  alerts: AlertThresholds;
  metricsFile?: string;
}

type Kind = 'number' | 'boolean' | 'string';
const EVENTS_KEYS: Record<keyof EventsConfig, Kind> = {
  dispatchAfterCommand: 'boolean',
  maxAttempts: 'number',
  backoffSeconds: 'number',
  maxBackoffSeconds: 'number',
  leaseSeconds: 'number',
  concurrency: 'number',
  batchSize: 'number',
  afterCommandLimit: 'number',
  warmCache: 'boolean',
  leaveToWorker: 'boolean',
  retentionDays: 'number',
};
const AUDIT_KEYS: Record<string, Kind> = { maxBytes: 'number' };
const ALERT_KEYS: Record<keyof AlertThresholds, Kind> = { rejectRate: 'number', importSeconds: 'number', deadEvents: 'number', hoursSinceImport: 'number' };

export function section<T>(name: string, raw: unknown, keys: Record<string, Kind>): Partial<T> {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CompanyctlError('COMPANYCTL_CONFIG_INVALID', `config: "${name}" must be a JSON object`);
  }
  for (const [k, v] of Object.entries(raw)) {
    const want = keys[k];
    if (!want) {
      throw new CompanyctlError('COMPANYCTL_CONFIG_INVALID', `config: unknown setting "${name}.${k}"`, { hint: `known: ${Object.keys(keys).join(', ')}` });
    }
    if (typeof v !== want || (want === 'number' && (!Number.isFinite(v) || (v as number) < 0))) {
      throw new CompanyctlError('COMPANYCTL_CONFIG_INVALID', `config: "${name}.${k}" must be a ${want === 'number' ? 'number >= 0' : want}`);
    }
  }
  return raw as Partial<T>;
}

export function eventsSettings(config: { events?: unknown; audit?: unknown; alerts?: unknown; metricsFile?: unknown }): EventsSettings {
  const e = section<EventsConfig>('events', config.events, EVENTS_KEYS);
  const a = section<{ maxBytes: number }>('audit', config.audit, AUDIT_KEYS);
  const alerts = section<AlertThresholds>('alerts', config.alerts, ALERT_KEYS);
  if (config.metricsFile !== undefined && typeof config.metricsFile !== 'string') {
    throw new CompanyctlError('COMPANYCTL_CONFIG_INVALID', 'config: "metricsFile" must be a string');
  }
  const int = (v: number | undefined, d: number, min = 1) => Math.max(min, Math.round(v ?? d));
  return {
    dispatchAfterCommand: e.dispatchAfterCommand ?? true,
    leaveToWorker: e.leaveToWorker ?? true,
    afterCommandLimit: int(e.afterCommandLimit, 1000),
    warmCache: e.warmCache ?? false,
    retentionDays: e.retentionDays || undefined,
    dispatch: {
      maxAttempts: int(e.maxAttempts, 8),
      backoffBaseMs: Math.round((e.backoffSeconds ?? 2) * 1000),
      backoffMaxMs: Math.round((e.maxBackoffSeconds ?? 3600) * 1000),
      leaseMs: Math.round((e.leaseSeconds ?? 60) * 1000),
      concurrency: int(e.concurrency, 4),
      batchSize: int(e.batchSize, 1000),
    },
    auditMaxBytes: int(a.maxBytes, 10 * 1024 * 1024, 4096),
    alerts,
    metricsFile: config.metricsFile as string | undefined,
  };
}
