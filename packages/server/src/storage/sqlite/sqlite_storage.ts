import type { Clock } from '@latchkey/protocol';
import { SqlStorage } from '../sql/sql_storage.ts';
import { SqliteDriver } from './sqlite_driver.ts';

/** Embedded storage in one SQLite file (WAL); the default when no database URL is set. */
export class SqliteStorage extends SqlStorage {
  constructor(file: string, clock?: Clock) {
    super(new SqliteDriver(file), clock);
  }
}
