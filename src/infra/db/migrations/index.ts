// Migrations per dialect, listed in code so the compiled binary needs no file globbing.
// The names are shared: a store's applied list is compared with KNOWN_MIGRATIONS to refuse
// a schema newer than this code.
import type { MigrationObject } from '@mikro-orm/core';
import { Migration } from '@mikro-orm/migrations';
import { initialPostgresql, initialSqlite } from './0001-initial.js';
import { authPostgresql, authSqlite } from './0002-auth.js';
import { importJobsPostgresql, importJobsSqlite } from './0003-import-jobs.js';
import { eventsPostgresql, eventsSqlite } from './0004-events.js';
import { enrichPostgresql, enrichSqlite } from './0005-enrich.js';
import { workerPostgresql, workerSqlite } from './0006-worker.js';
import { auditPostgresql, auditSqlite } from './0007-audit.js';
import { brokerPostgresql, brokerSqlite } from './0008-broker.js';
import { importInputPrefixPostgresql, importInputPrefixSqlite } from './0010-import-input-prefix.js';
import { nameFold } from './0012-name-fold.js';
import { KNOWN_MIGRATIONS, type Dialect } from './names.js';

/** A migration step that needs code (a backfill computed in the application), run in the migration's transaction. */
type Step = (execute: (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>) => Promise<void>;

const SQL: Record<Dialect, Record<(typeof KNOWN_MIGRATIONS)[number], string[] | Step>> = {
  sqlite: {
    '0001-initial': initialSqlite,
    '0002-auth': authSqlite,
    '0003-import-jobs': importJobsSqlite,
    '0004-events': eventsSqlite,
    '0005-enrich': enrichSqlite,
    '0006-worker': workerSqlite,
    '0007-audit': auditSqlite,
    '0008-broker': brokerSqlite,
    '0010-import-input-prefix': importInputPrefixSqlite,
    '0012-name-fold': nameFold('sqlite'),
  },
  postgresql: {
    '0001-initial': initialPostgresql,
    '0002-auth': authPostgresql,
    '0003-import-jobs': importJobsPostgresql,
    '0004-events': eventsPostgresql,
    '0005-enrich': enrichPostgresql,
    '0006-worker': workerPostgresql,
    '0007-audit': auditPostgresql,
    '0008-broker': brokerPostgresql,
    '0010-import-input-prefix': importInputPrefixPostgresql,
    '0012-name-fold': nameFold('postgresql'),
  },
};

export function migrationsFor(dialect: Dialect): MigrationObject[] {
  return KNOWN_MIGRATIONS.map((name) => ({
    name,
    class: class extends Migration {
      override async up(): Promise<void> {
        const step = SQL[dialect][name];
        if (typeof step === 'function') await step((sql, params) => this.execute(sql, params) as Promise<Record<string, unknown>[]>);
        else for (const sql of step) this.addSql(sql);
      }
    },
  }));
}
