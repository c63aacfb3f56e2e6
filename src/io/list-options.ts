// `company list` flags -> validated list options (shared with `export` later).
import { parseInstant } from '../domain/dates.js';
import { normaliseCountry } from '../domain/normalise.js';
import { COMPANY_STATUSES, SORT_FIELDS, type SortField } from '../domain/company.js';
import { CompanyctlError } from '../errors.js';
import type { FilterFlags } from './filter-flags.js';
import type { ListOptions } from '../services/company.js';

export interface ListFlags extends FilterFlags {
  deleted?: boolean;
  includeDeleted?: boolean;
  sort: string;
  limit?: string;
  all?: boolean;
  cursor?: string;
}

const usage = (flag: string, message: string, hint?: string) => new CompanyctlError('COMPANYCTL_USAGE', `${flag}: ${message}`, { field: flag, hint });

export function parseListOptions(flags: ListFlags, now: Date, streaming: boolean): ListOptions {
  const descending = flags.sort.startsWith('-');
  const sort = flags.sort.replace(/^[-+]/, '');
  if (!(SORT_FIELDS as readonly string[]).includes(sort)) throw usage('--sort', `unknown field ${JSON.stringify(sort)}`, `sort by ${SORT_FIELDS.join(', ')}`);
  let limit: number | undefined = streaming ? undefined : 50;
  if (flags.limit !== undefined) {
    if (!/^\d+$/.test(flags.limit) || Number(flags.limit) < 1) throw usage('--limit', `${JSON.stringify(flags.limit)} is not a positive whole number`);
    limit = Number(flags.limit);
  }
  if (flags.all) {
    if (flags.limit !== undefined) throw usage('--all', 'cannot be combined with --limit');
    limit = undefined;
  }
  if (flags.deleted && flags.includeDeleted) throw usage('--deleted', 'cannot be combined with --include-deleted');
  let country: string | undefined;
  if (flags.country !== undefined) {
    try {
      country = normaliseCountry(flags.country);
    } catch (e) {
      throw usage('--country', (e as Error).message);
    }
  }
  const status = flags.status?.toLowerCase();
  if (status !== undefined && !(COMPANY_STATUSES as readonly string[]).includes(status)) {
    throw usage('--status', `${JSON.stringify(flags.status)} is not one of ${COMPANY_STATUSES.join(', ')}`);
  }
  return {
    filter: {
      nameContains: flags.name,
      country,
      industry: flags.industry,
      status,
      tag: flags.tag?.trim().toLowerCase(),
      updatedSince: flags.updatedSince === undefined ? undefined : parseSince(flags.updatedSince, now),
      onlyDeleted: flags.deleted,
      includeDeleted: flags.includeDeleted,
    },
    sort: sort as SortField,
    descending,
    limit,
    cursor: flags.cursor,
  };
}

/** "7d", "36h", "90m", "2026-01-31" or an ISO time -> ISO time string (UTC). */
export function parseSince(value: string, now: Date): string {
  const age = /^(\d+)([mhdw])$/.exec(value.trim());
  if (age) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[age[2] as 'm' | 'h' | 'd' | 'w'];
    return new Date(now.getTime() - Number(age[1]) * unit).toISOString();
  }
  const t = parseInstant(value);
  if (t === undefined) throw usage('--updated-since', `${JSON.stringify(value)} is not a date (YYYY-MM-DD), ISO time or age (7d, 36h)`);
  return new Date(t).toISOString();
}
