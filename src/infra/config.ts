// The optional config file ($XDG_CONFIG_HOME/companyctl/config.json).
import { readFileSync } from 'node:fs';
import { CompanyctlError } from '../errors.js';

export interface Config {
  /** Store location: a SQLite path or a postgresql:// URL. */
  db?: string;
  /** Cache entry lifetime for PostgreSQL stores (several hosts, several caches). */
  cacheTtlSeconds?: number;
  /** Cache entry lifetime for SQLite stores; 0 means until a write invalidates it. */
  sqliteCacheTtlSeconds?: number;
  /** PostgreSQL: how long company cache entries are trusted while this host's worker listens for changes. */
  workerCacheSeconds?: number;
  /** `companyctl worker` settings (lease, heartbeat, polling); checked by services/worker/settings.ts. */
  worker?: Record<string, unknown>;
  /** How long a verified, live session is trusted from the file cache (revocation delay on other hosts). */
  sessionCacheSeconds?: number;
  /** The company-data API for `companyctl enrich`; checked in full by services/enrich-config.ts when used. */
  enrich?: Record<string, unknown>;
  /** Event delivery (retries, backoff, dispatch after each command); checked by services/events-settings.ts. */
  events?: Record<string, unknown>;
  /** The audit log (rotation size); checked by services/events-settings.ts. */
  audit?: Record<string, unknown>;
  /** Alert thresholds for `companyctl stats --check`; checked by services/events-settings.ts. */
  alerts?: Record<string, unknown>;
  /** Where the Prometheus text file goes (default <state>/companyctl.prom). */
  metricsFile?: string;
  /** RabbitMQ (publish events, consume inbound changes); checked by services/broker-config.ts. */
  broker?: Record<string, unknown>;
}

const KNOWN: Record<keyof Config, 'string' | 'number' | 'object'> = {
  db: 'string',
  cacheTtlSeconds: 'number',
  sqliteCacheTtlSeconds: 'number',
  sessionCacheSeconds: 'number',
  workerCacheSeconds: 'number',
  worker: 'object',
  enrich: 'object',
  events: 'object',
  audit: 'object',
  alerts: 'object',
  metricsFile: 'string',
  broker: 'object',
};

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CompanyctlError('COMPANYCTL_CONFIG_INVALID', `cannot read config file ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CompanyctlError('COMPANYCTL_CONFIG_INVALID', `config file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CompanyctlError('COMPANYCTL_CONFIG_INVALID', `config file ${file} must hold a JSON object`);
  }
  for (const [k, v] of Object.entries(raw)) {
    const want = KNOWN[k as keyof Config];
    if (!want) {
      throw new CompanyctlError('COMPANYCTL_CONFIG_INVALID', `config file ${file}: unknown setting "${k}"`, {
        hint: `known settings: ${Object.keys(KNOWN).join(', ')}`,
      });
    }
    if (typeof v !== want || (want === 'object' && (v === null || Array.isArray(v)))) {
      throw new CompanyctlError('COMPANYCTL_CONFIG_INVALID', `config file ${file}: "${k}" must be ${want === 'object' ? 'a JSON object' : `a ${want}`}`);
    }
  }
  return raw as Config;
}
