import { SqlStorage, type SqlStorageOptions } from '../sql/sql_storage.ts';
import { PostgresDriver } from './postgres_driver.ts';

/** Storage on PostgreSQL, shared by several IdP replicas. */
export class PostgresStorage extends SqlStorage {
  constructor(connectionString: string, options: SqlStorageOptions & { max?: number } = {}) {
    super(new PostgresDriver(connectionString, { max: options.max }), options);
  }
}
