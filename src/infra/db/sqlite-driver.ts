// MikroORM's SQLite driver on our own better-sqlite3 12: the same few classes as
// @mikro-orm/better-sqlite 6.6.16 (MIT), whose hard dependency on better-sqlite3 11.10.0 made a
// global install compile a second, unused copy (npm `overrides` apply to a root project only).
import {
  CheckConstraintViolationException,
  ConnectionException,
  ExceptionConverter,
  ForeignKeyConstraintViolationException,
  InvalidFieldNameException,
  LockWaitTimeoutException,
  NonUniqueFieldNameException,
  NotNullConstraintViolationException,
  ReadOnlyException,
  SyntaxErrorException,
  TableExistsException,
  TableNotFoundException,
  UniqueConstraintViolationException,
  type Configuration,
  type DriverException,
} from '@mikro-orm/core';
import { AbstractSqlDriver, BaseSqliteConnection, BaseSqlitePlatform, BaseSqliteSchemaHelper, BetterSqliteKnexDialect } from '@mikro-orm/knex';
// @ts-expect-error sqlstring-sqlite ships no types (CommonJS: default import only)
import sqlstring from 'sqlstring-sqlite';

const SQLITE_ERRORS: [RegExp, new (e: Error) => DriverException][] = [
  [/database is locked/, LockWaitTimeoutException],
  [/must be unique|is not unique|are not unique|UNIQUE constraint failed/, UniqueConstraintViolationException],
  [/may not be NULL|NOT NULL constraint failed/, NotNullConstraintViolationException],
  [/CHECK constraint failed/, CheckConstraintViolationException],
  [/no such table:/, TableNotFoundException],
  [/already exists/, TableExistsException],
  [/no such column:/, InvalidFieldNameException],
  [/ambiguous column name/, NonUniqueFieldNameException],
  [/syntax error/, SyntaxErrorException],
  [/attempt to write a readonly database/, ReadOnlyException],
  [/unable to open database file/, ConnectionException],
  [/FOREIGN KEY constraint failed/, ForeignKeyConstraintViolationException],
];

class SqliteExceptionConverter extends ExceptionConverter {
  override convertException(exception: Error & Record<string, any>): DriverException {
    const found = SQLITE_ERRORS.find(([re]) => re.test(exception.message));
    return found ? new found[1](exception) : super.convertException(exception);
  }
}

class SqliteSchemaHelper extends BaseSqliteSchemaHelper {}

class SqlitePlatform extends BaseSqlitePlatform {
  protected override readonly schemaHelper: SqliteSchemaHelper = new SqliteSchemaHelper(this);
  protected override readonly exceptionConverter = new SqliteExceptionConverter();
  override escape(value: unknown): string {
    return sqlstring.escape(value, true, this.timezone) as string;
  }
}

class SqliteConnection extends BaseSqliteConnection {
  override createKnex(): void {
    this.client = this.createKnexClient(BetterSqliteKnexDialect as never);
    this.connected = true;
  }
}

export class SqliteDriver extends AbstractSqlDriver<SqliteConnection, SqlitePlatform> {
  constructor(config: Configuration) {
    super(config, new SqlitePlatform(), SqliteConnection, ['knex', 'better-sqlite3']);
  }
}
