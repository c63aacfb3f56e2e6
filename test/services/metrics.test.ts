// Metrics: the Prometheus text file parses as the text exposition format, and alert
// thresholds trip.
import { describe, expect, it } from 'vitest';
import parsePrometheus from 'parse-prometheus-text-format';
import { renderPrometheus } from '../../src/infra/metrics-file.js';
import { checkExposition } from './prometheus-exposition.js';
import { emptyMetrics, evaluateAlerts, metricFamilies, recordCommand, recordEvent, updateFiring } from '../../src/services/metrics.js';

const now = new Date('2026-03-01T12:00:00Z');

function busyState() {
  const s = emptyMetrics();
  recordCommand(s, 'company get', 0, 0.12);
  recordCommand(s, 'company get', 1, 0.05);
  recordCommand(s, 'import', 3, 12.5);
  recordCommand(s, 'weird "name"\\with\nnewline', 0, 1);
  const summary = (id: number, state: string, rows: number, rejected: number, seconds: number, at: string) =>
    recordEvent(s, { id, type: `import.${state}`, createdAt: at, payload: { jobId: id, state, rows, inserted: rows - rejected, updated: 0, unchanged: 0, rejected, seconds, rowsPerSecond: rows / seconds } });
  summary(1, 'completed', 1000, 0, 10, '2026-03-01T02:00:00Z');
  summary(2, 'completed_with_rejects', 1000, 120, 4000, '2026-03-01T03:00:00Z');
  recordEvent(s, { id: 3, type: 'import.chunk_failed', createdAt: '2026-03-01T03:00:00Z', payload: { jobId: 2 } });
  s.events = { ...s.events, pending: 2, failed: 1, dead: 3, countedAt: now.toISOString(), delivered: { audit: 10 } };
  return s;
}

describe('Prometheus text file', () => {
  it('parses as the text exposition format, with every metric the toolkit promises', () => {
    const text = renderPrometheus(metricFamilies(busyState(), { hits: 7, misses: 3 }, now));
    expect(checkExposition(text)).toEqual([]);
    const families = parsePrometheus(text);
    const byName = Object.fromEntries(families.map((f: { name: string }) => [f.name, f]));
    for (const n of [
      'companyctl_commands_total',
      'companyctl_command_duration_seconds_total',
      'companyctl_import_rows_total',
      'companyctl_import_last_duration_seconds',
      'companyctl_import_last_rows_per_second',
      'companyctl_import_last_success_timestamp_seconds',
      'companyctl_cache_hits_total',
      'companyctl_cache_misses_total',
      'companyctl_events',
      'companyctl_alert_firing',
    ]) {
      expect(byName[n], n).toBeDefined();
    }
    const value = (n: string, labels: Record<string, string> = {}) =>
      Number(byName[n].metrics.find((m: { labels?: Record<string, string> }) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)).value);
    expect(value('companyctl_commands_total', { command: 'company get', exit_code: '1' })).toBe(1);
    expect(value('companyctl_commands_total', { command: 'weird "name"\\with\nnewline' })).toBe(1);
    expect(value('companyctl_import_rows_total', { result: 'inserted' })).toBe(1880);
    expect(value('companyctl_import_rows_total', { result: 'rejected' })).toBe(120);
    expect(value('companyctl_import_failed_chunks_total')).toBe(1);
    expect(value('companyctl_import_last_success_timestamp_seconds')).toBe(Date.parse('2026-03-01T03:00:00Z') / 1000);
    expect(value('companyctl_events', { state: 'dead' })).toBe(3);
    expect(value('companyctl_cache_hits_total')).toBe(7);
    expect(byName.companyctl_commands_total.type).toBe('COUNTER');
    expect(byName.companyctl_events.type).toBe('GAUGE');
  });

  it('an empty state is valid too (families without samples)', () => {
    expect(checkExposition(renderPrometheus(metricFamilies(emptyMetrics(), undefined, now)))).toEqual([]);
  });

  it('counts a resumed import job only by what it added, and each event once', () => {
    const s = emptyMetrics();
    const ev = (id: number, inserted: number) => ({ id, type: 'import.completed', createdAt: now.toISOString(), payload: { jobId: 9, state: 'completed', rows: inserted, inserted, rejected: 0 } });
    expect(recordEvent(s, ev(1, 400))).toBe(true);
    expect(recordEvent(s, ev(2, 1000))).toBe(true);
    expect(recordEvent(s, ev(2, 1000))).toBe(false);
    expect(s.imports.rows.inserted).toBe(1000);
  });
});

describe('alerts', () => {
  it('trip on reject rate, import duration, dead events and hours since the last successful import', () => {
    const s = busyState();
    expect(evaluateAlerts(s, {}, now).map((a) => a.name)).toEqual(['deadEvents']); // dead events: on by default (> 0)
    const all = evaluateAlerts(s, { rejectRate: 0.05, importSeconds: 3600, deadEvents: 5, hoursSinceImport: 12 }, now);
    expect(all.map((a) => a.name)).toEqual(['rejectRate', 'importSeconds']);
    expect(all[0]).toMatchObject({ value: 0.12, threshold: 0.05 });
    const later = new Date('2026-03-01T15:00:01Z'); // 12 h after the last successful import at 03:00
    expect(evaluateAlerts(s, { hoursSinceImport: 12, deadEvents: 10 }, later).map((a) => a.name)).toEqual(['hoursSinceImport']);
    expect(evaluateAlerts(emptyMetrics(), { hoursSinceImport: 24 }, now)[0]).toMatchObject({ name: 'hoursSinceImport', message: expect.stringContaining('no successful import yet') });
    expect(evaluateAlerts(s, { rejectRate: 0.2, importSeconds: 5000, deadEvents: 3 }, now)).toEqual([]);
  });

  it('report an alert as new once, until it stops firing', () => {
    const s = busyState();
    const a = evaluateAlerts(s, {}, now);
    expect(updateFiring(s, a, now).map((x) => x.name)).toEqual(['deadEvents']);
    expect(updateFiring(s, a, now)).toEqual([]);
    expect(s.alerts.deadEvents?.since).toBe(now.toISOString());
    expect(updateFiring(s, [], now)).toEqual([]);
    expect(s.alerts).toEqual({});
    expect(updateFiring(s, a, now).map((x) => x.name)).toEqual(['deadEvents']);
  });
});

describe('command log', () => {
  it('is folded from where the last fold stopped, whole lines only', async () => {
    const { appendCommandLine, readCommandLines } = await import('../../src/infra/metrics-file.js');
    const { tempHome } = await import('../helpers.js');
    const { appendFileSync } = await import('node:fs');
    const home = tempHome();
    try {
      const dir = `${home.home}/state`;
      appendCommandLine(dir, 'company get', 0, 0.02);
      appendCommandLine(dir, 'company\tget', 1, 0.5);
      appendFileSync(`${dir}/commands.log`, 'half a li');
      const first = readCommandLines(dir, 0);
      expect(first.lines).toEqual([
        ['company get', 0, 0.02],
        ['company get', 1, 0.5],
      ]);
      appendFileSync(`${dir}/commands.log`, 'ne\t0\t1\n');
      appendCommandLine(dir, 'stats', 0, 0.1);
      expect(readCommandLines(dir, first.offset).lines).toEqual([
        ['half a line', 0, 1],
        ['stats', 0, 0.1],
      ]);
    } finally {
      home.cleanup();
    }
  });
});
