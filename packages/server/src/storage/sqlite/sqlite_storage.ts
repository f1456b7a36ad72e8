import { SqlStorage, type SqlStorageOptions } from '../sql/sql_storage.ts';
import { SqliteDriver } from './sqlite_driver.ts';

/** Embedded storage in one SQLite file (WAL); the default when no database URL is set. */
export class SqliteStorage extends SqlStorage {
  constructor(file: string, options: SqlStorageOptions = {}) {
    super(new SqliteDriver(file), options);
  }
}
