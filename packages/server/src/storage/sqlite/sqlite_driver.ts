import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { LatchkeyError } from '../../errors.ts';
import type { SqlChannel, SqlDriver, SqlExecutor, SqlTransaction } from '../sql/sql_driver.ts';

/**
 * Maps a SQLite failure: a duplicate key is `storage_conflict`; any other refusal or outage
 * (BUSY, IOERR, FULL, READONLY, a closed database, a constraint nobody expected) is
 * `storage_unavailable`. Anything else (a programming error) passes unchanged.
 */
function mapSqliteError(err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE')
    return new LatchkeyError('storage_conflict', 'unique constraint violated', { cause: err });
  if (typeof code === 'string' && code.startsWith('SQLITE_'))
    return new LatchkeyError('storage_unavailable', `SQLite: ${code}`, { cause: err });
  if (err instanceof TypeError && /database connection is not open/.test(err.message))
    return new LatchkeyError('storage_unavailable', 'SQLite: the database is closed', { cause: err });
  return err;
}

/** How long a write waits for another connection's write transaction before `storage_unavailable`. */
const BUSY_TIMEOUT_MS = 5000;

/** SQLite binds no booleans: they are stored as 0 and 1. */
const bind = (params: readonly unknown[]): unknown[] => params.map((p) => (p === true ? 1 : p === false ? 0 : p));

/**
 * Embedded storage: one SQLite file in WAL mode, one connection, statements prepared once. A
 * write transaction is `BEGIN IMMEDIATE`; while one is open every other statement waits for it
 * (on the shared connection it would otherwise run inside it, and be undone by its rollback).
 */
export class SqliteDriver implements SqlDriver {
  readonly kind = 'sqlite' as const;
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly listeners = new Map<SqlChannel, Set<() => void>>();
  /** Settles when the open transaction ends. */
  private open: Promise<void> | undefined;

  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    // busy_timeout 0: SQLite's own wait would spin synchronously, blocking the event loop (and
    // deadlocking when the lock's holder is a transaction of this process awaiting its turn).
    // A busy database is waited for asynchronously instead (`whenFree`).
    for (const pragma of ['journal_mode = WAL', 'synchronous = NORMAL', 'busy_timeout = 0', 'foreign_keys = ON'])
      this.statement(`PRAGMA ${pragma}`).run();
  }

  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  /**
   * Runs `fn`; while another connection (another process) holds the write lock, tries again with
   * a growing pause, for up to BUSY_TIMEOUT_MS, without blocking the event loop.
   */
  private async whenFree<T>(fn: () => T, outside = false): Promise<T> {
    const giveUp = Date.now() + BUSY_TIMEOUT_MS;
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      // Outside a transaction, wait for this process's own to end first, on every try.
      if (outside && this.open) await this.idle();
      try {
        return fn();
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() >= giveUp) throw mapSqliteError(err);
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** Statement runners: `outside` ones first wait for this process's open transaction to end. */
  private executor(outside: boolean): SqlExecutor {
    return {
      run: (sql, params = []) => this.whenFree(() => this.statement(sql).run(...bind(params)).changes, outside),
      get: <R>(sql: string, params: readonly unknown[] = []) =>
        this.whenFree(() => this.statement(sql).get(...bind(params)) as R | undefined, outside),
      all: <R>(sql: string, params: readonly unknown[] = []) =>
        this.whenFree(() => this.statement(sql).all(...bind(params)) as R[], outside),
      exec: (script) => this.whenFree(() => void this.db.exec(script), outside),
    };
  }

  /** Inside the open transaction. */
  private readonly direct = this.executor(false);
  /** Outside any transaction (they would otherwise join one on the shared connection). */
  private readonly gated = this.executor(true);

  private async idle(): Promise<void> {
    while (this.open) await this.open;
  }

  run(sql: string, params?: readonly unknown[]): Promise<number> {
    return this.gated.run(sql, params);
  }

  get<R>(sql: string, params?: readonly unknown[]): Promise<R | undefined> {
    return this.gated.get<R>(sql, params);
  }

  all<R>(sql: string, params?: readonly unknown[]): Promise<R[]> {
    return this.gated.all<R>(sql, params);
  }

  exec(script: string): Promise<void> {
    return this.gated.exec(script);
  }

  async transaction<T>(body: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    // Checked and taken with no await in between: two callers that both found the connection
    // free across an await would both BEGIN ("cannot start a transaction within a transaction").
    while (this.open) await this.open;
    let end!: () => void;
    this.open = new Promise((resolve) => (end = resolve));
    const notified = new Set<SqlChannel>();
    // BEGIN IMMEDIATE takes the database's write lock: appends are serialized already.
    const tx: SqlTransaction = { ...this.direct, lock: async () => {}, notify: async (c) => void notified.add(c) };
    try {
      // BEGIN IMMEDIATE takes the write lock now, waiting (asynchronously) for another process's writer.
      // BEGIN, COMMIT and ROLLBACK are prepared once, like every other statement: `exec` would
      // parse them again for every transaction, one per group commit on the token path.
      await this.whenFree(() => this.statement('BEGIN IMMEDIATE').run());
      try {
        const result = await body(tx);
        this.guard(() => this.statement('COMMIT').run());
        for (const c of notified) for (const l of this.listeners.get(c) ?? []) l();
        return result;
      } finally {
        if (this.db.open && this.db.inTransaction) this.statement('ROLLBACK').run();
      }
    } finally {
      this.open = undefined;
      end();
    }
  }

  listen(channel: SqlChannel, listener: () => void): () => void {
    // One process owns a SQLite file, so its own commits are all there is to hear.
    let set = this.listeners.get(channel);
    if (!set) this.listeners.set(channel, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  notificationsConnected(): boolean {
    return true;
  }

  async close(): Promise<void> {
    await this.idle();
    if (this.db.open) this.db.close();
  }
}
