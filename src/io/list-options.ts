// `company list` flags -> validated list options (shared with `export` later).
import { parseInstant } from '../domain/dates.js';
import { normaliseCountry } from '../domain/normalise.js';
import { COMPANY_STATUSES, SORT_FIELDS, type SortField } from '../domain/company.js';
import { CompanyctlError } from '../errors.js';
import type { FilterFlags } from './filter-flags.js';
import { parseTime, parseWholeNumber } from './flags.js';
import type { ListOptions } from '../services/company.js';

export interface ListFlags extends FilterFlags {
  deleted?: boolean;
  includeDeleted?: boolean;
  sort?: string;
  limit?: string;
  all?: boolean;
  cursor?: string;
}

const usage = (flag: string, message: string, hint?: string) => new CompanyctlError('COMPANYCTL_USAGE', `${flag}: ${message}`, { field: flag, hint });

export function parseListOptions(flags: ListFlags, now: Date, streaming: boolean): ListOptions {
  const sortFlag = flags.sort ?? 'id';
  const descending = sortFlag.startsWith('-');
  const sort = sortFlag.replace(/^[-+]/, '');
  if (!(SORT_FIELDS as readonly string[]).includes(sort)) throw usage('--sort', `unknown field ${JSON.stringify(sort)}`, `sort by ${SORT_FIELDS.join(', ')}`);
  let limit: number | undefined = streaming ? undefined : 50;
  if (flags.limit !== undefined) {
    limit = parseWholeNumber('--limit', flags.limit);
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
      updatedSince: flags.updatedSince === undefined ? undefined : parseTime('--updated-since', flags.updatedSince, now).toISOString(),
      onlyDeleted: flags.deleted,
      includeDeleted: flags.includeDeleted,
    },
    sort: sort as SortField,
    descending,
    limit,
    cursor: flags.cursor,
    sortGiven: flags.sort !== undefined,
  };
}
