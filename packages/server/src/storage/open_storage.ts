import { join } from 'node:path';
import { type Clock, systemClock } from '@latchkey/protocol';
import type { Storage } from './ports.ts';
import { PostgresStorage } from './postgres/postgres_storage.ts';
import { SqliteStorage } from './sqlite/sqlite_storage.ts';

/** PostgreSQL when a URL is given, else SQLite in the data folder; migrations applied. */
export async function openStorage(options: {
  databaseUrl?: string | undefined;
  dataDir: string;
  clock?: Clock;
}): Promise<Storage> {
  const clock = options.clock ?? systemClock;
  const storage: Storage = options.databaseUrl
    ? new PostgresStorage(options.databaseUrl, clock)
    : new SqliteStorage(join(options.dataDir, 'latchkey.db'), clock);
  try {
    await storage.migrate();
  } catch (err) {
    await storage.close().catch(() => {});
    throw err;
  }
  return storage;
}
