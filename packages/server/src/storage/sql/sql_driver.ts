/**
 * The part of a SQL database that differs between SQLite and PostgreSQL, and nothing else: running
 * one statement, transactions, serializing locks, notifications between replicas, error mapping.
 * Every statement is written once in the catalogue (`sql_catalogue.ts`) with `?` placeholders; a
 * driver renders them in its dialect. Storage logic lives in `SqlStorage`, written once over this.
 */

/** Named serializing locks taken inside a transaction (PostgreSQL advisory locks). */
export type SqlLock = 'migration' | 'feed' | 'audit' | 'status';

/** Notification channels between replicas (PostgreSQL LISTEN/NOTIFY). */
export type SqlChannel = 'feed';

/** Runs statements: the whole database outside a transaction, or one transaction inside it. */
export interface SqlExecutor {
  /** A write; resolves with the number of rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  get<R>(sql: string, params?: readonly unknown[]): Promise<R | undefined>;
  all<R>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /** A script of statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

/** The executor a transaction body receives. */
export interface SqlTransaction extends SqlExecutor {
  /** Takes `lock` until the transaction ends; appends of one kind are serialized across replicas. */
  lock(lock: SqlLock): Promise<void>;
  /** Wakes every listener of `channel` (on every replica) once the transaction has committed. */
  notify(channel: SqlChannel): Promise<void>;
}

/**
 * One SQL database. Failures reach callers as `LatchkeyError`s mapped in one place per driver: a
 * unique or primary-key violation is `storage_conflict`; an outage or any other refusal is
 * `storage_unavailable` (answered as 503).
 */
export interface SqlDriver extends SqlExecutor {
  readonly kind: 'sqlite' | 'postgres';
  /** Which migration script applies (`Migration[kind]`). */
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Runs `body` in one write transaction: committed when it resolves, rolled back when it throws
   * (the error passes through). Transactions and the statements outside them never interleave.
   */
  transaction<T>(body: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  /**
   * Calls `listener` after a notification on `channel` committed — by this process, or on
   * PostgreSQL by any replica — and after a lost notification connection is back. Returns an unsubscribe.
   */
  listen(channel: SqlChannel, listener: () => void): () => void;
  /** False while a notification connection other replicas' commits would arrive on is lost (PostgreSQL). */
  notificationsConnected(): boolean;
  close(): Promise<void>;
}
