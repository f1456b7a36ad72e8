import { chmodSync, existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { LatchkeyError } from '../../errors.ts';
import { migrations } from '../migrations/index.ts';

/** The SQLite database's file in the data folder. */
export const SQLITE_FILE = 'latchkey.db';

/**
 * A consistent copy of the IdP's SQLite database with SQLite's online backup API, while the IdP
 * runs (its writes go on; the copy is of one moment). Refuses to overwrite `out`; the copy is 0600
 * (it holds sealed private keys and secret hashes — never the master key, which stays apart).
 */
export async function backupSqlite(dataDir: string, out: string): Promise<{ bytes: number; pages: number }> {
  const src = join(dataDir, SQLITE_FILE);
  if (!existsSync(src)) throw new LatchkeyError('backup_invalid', `${src}: no database to back up`);
  if (existsSync(out)) throw new LatchkeyError('restore_refused', `${out} exists: give a new file`);
  const db = new Database(src, { readonly: true, fileMustExist: true });
  try {
    const r = await db.backup(out);
    chmodSync(out, 0o600);
    return { pages: r.totalPages, bytes: r.totalPages * (db.pragma('page_size', { simple: true }) as number) };
  } finally {
    db.close();
  }
}

/** The schema version of a file, if it is a Latchkey database (throws `backup_invalid` otherwise). */
export function latchkeyVersionOf(file: string): number {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const v = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
    if (v.v === null) throw new Error('no migrations recorded');
    return v.v;
  } catch (err) {
    throw new LatchkeyError('backup_invalid', `${file} is not a Latchkey database (${(err as Error).message})`, {
      cause: err,
    });
  } finally {
    db?.close();
  }
}

/**
 * Puts a backup in place as the data folder's database: refused while a process has that
 * database open (an IdP runs on it) and, unless `force`, when a database is there. Written beside it and
 * renamed over it, with the old database's WAL and shared-memory files removed first (replayed
 * onto the restored file they would corrupt it).
 */
export async function restoreSqlite(backup: string, dataDir: string, options: { force: boolean }): Promise<void> {
  const version = latchkeyVersionOf(backup);
  const known = Math.max(...migrations.map((m) => m.version));
  if (version > known)
    throw new LatchkeyError(
      'backup_invalid',
      `${backup} is of a newer Latchkey (schema ${version}; this one knows ${known})`,
    );
  const target = join(dataDir, SQLITE_FILE);
  // SQLite keeps `-shm` while any connection has the database open (and removes it at the last close).
  if (existsSync(`${target}-shm`))
    throw new LatchkeyError(
      'restore_refused',
      `${target} is open (an IdP runs on it, or one stopped without closing it): stop the IdP first`,
    );
  if (existsSync(target) && !options.force)
    throw new LatchkeyError('restore_refused', `${target} exists: restore with --force to replace it`);
  const staging = `${target}.restoring`;
  rmSync(staging, { force: true });
  const src = new Database(backup, { readonly: true, fileMustExist: true });
  try {
    await src.backup(staging);
  } finally {
    src.close();
  }
  chmodSync(staging, 0o600);
  for (const f of [`${target}-wal`, `${target}-shm`]) rmSync(f, { force: true });
  renameSync(staging, target);
}
