// The migrations this code knows, oldest first. A store that has applied a name not in
// this list was written by a newer companyctl and is refused.
export type Dialect = 'sqlite' | 'postgresql';

export const KNOWN_MIGRATIONS = ['0001-initial', '0002-auth', '0003-import-jobs', '0004-events', '0005-enrich', '0006-worker', '0007-audit', '0008-broker', '0010-import-input-prefix', '0012-name-fold'] as const;
