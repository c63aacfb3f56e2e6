// `worker status`: the workers of the store, alive or gone, and what each holds.
import type { Store } from '../../infra/db/store.js';
import { listWorkers } from '../../infra/db/worker-registry.js';

export interface WorkerStatus {
  id: string;
  host: string;
  pid: number;
  version: string;
  state: 'running' | 'stopping' | 'stopped';
  alive: boolean;
  startedAt: string;
  heartbeatAt: string;
  stoppedAt: string | null;
  holds: number[];
  jobsRun: number;
  eventsDelivered: number;
}

/** Workers not stopped, and those stopped within `historyMs`; alive = beat within the lease and not stopped. */
export async function workerStatus(store: Store, now: Date, leaseMs: number, historyMs = 24 * 3_600_000): Promise<WorkerStatus[]> {
  const rows = await listWorkers(store.read, new Date(now.getTime() - historyMs).toISOString());
  return rows.map((r) => ({
    id: r.id,
    host: r.host,
    pid: r.pid,
    version: r.version,
    state: r.state,
    alive: r.state !== 'stopped' && now.getTime() - Date.parse(r.heartbeatAt) <= leaseMs,
    startedAt: r.startedAt,
    heartbeatAt: r.heartbeatAt,
    stoppedAt: r.stoppedAt,
    holds: r.holds,
    jobsRun: r.jobsRun,
    eventsDelivered: r.eventsDelivered,
  }));
}
