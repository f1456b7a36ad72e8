import type { Clock } from '@latchkey/protocol';
import { SqlStorage } from '../sql/sql_storage.ts';
import { PostgresDriver } from './postgres_driver.ts';

/** Storage on PostgreSQL, shared by several IdP replicas. */
export class PostgresStorage extends SqlStorage {
  constructor(connectionString: string, clock?: Clock, options: { max?: number } = {}) {
    super(new PostgresDriver(connectionString, options), clock);
  }
}
