import { join } from 'node:path';
import type { Storage } from './ports.ts';
import { PostgresStorage } from './postgres/postgres_storage.ts';
import { SqliteStorage } from './sqlite/sqlite_storage.ts';

/** PostgreSQL when a URL is given, else SQLite in the data folder; migrations applied. */
export async function openStorage(options: { databaseUrl?: string | undefined; dataDir: string }): Promise<Storage> {
  const storage: Storage = options.databaseUrl
    ? new PostgresStorage(options.databaseUrl)
    : new SqliteStorage(join(options.dataDir, 'latchkey.db'));
  try {
    await storage.migrate();
  } catch (err) {
    await storage.close().catch(() => {});
    throw err;
  }
  return storage;
}
