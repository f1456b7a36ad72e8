import pg from 'pg';
import { LatchkeyError } from '../../errors.ts';
import type { SqlChannel, SqlDriver, SqlExecutor, SqlLock, SqlTransaction } from '../sql/sql_driver.ts';

/** Advisory lock ids ("latchk", "lkfeed", "lkaudt" in ASCII). */
const LOCKS: Record<SqlLock, number> = {
  migration: 0x6c617463686b,
  feed: 0x6c6b66656564,
  audit: 0x6c6b61756474,
  status: 0x6c6b73746174,
};

const CHANNELS: Record<SqlChannel, string> = { feed: 'latchkey_feed' };

/**
 * Maps a PostgreSQL failure: a unique violation (23505) is `storage_conflict`; a lost connection,
 * a shutdown or any other refusal by the database is `storage_unavailable`. Errors that came
 * neither from the database nor from the connection (a programming error) pass unchanged.
 */
function mapPgError(err: unknown): unknown {
  if (err instanceof LatchkeyError) return err;
  const code = (err as { code?: unknown }).code;
  if (code === '23505') return new LatchkeyError('storage_conflict', 'unique constraint violated', { cause: err });
  if (typeof code === 'string' || err instanceof pg.DatabaseError || isConnectionError(err))
    return new LatchkeyError('storage_unavailable', 'PostgreSQL refused or is unreachable', { cause: err });
  return err;
}

const isConnectionError = (err: unknown): boolean =>
  err instanceof Error &&
  /Connection terminated|ECONNREFUSED|ECONNRESET|connection error|timeout|Client was closed|pool after calling end/i.test(
    err.message,
  );

/** `?` placeholders numbered `$1…` (no statement of the catalogue has a `?` inside a literal). */
const numbered = (sql: string): string => {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
};

/** PostgreSQL for several IdP replicas sharing one database. */
export class PostgresDriver implements SqlDriver {
  readonly kind = 'postgres' as const;
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly texts = new Map<string, string>();
  private readonly listeners = new Map<SqlChannel, Set<() => void>>();
  private readonly direct: SqlExecutor;
  private readonly connectionString: string;
  private listenClient: pg.Client | undefined;
  private listenRetry: NodeJS.Timeout | undefined;
  private listening = false;
  private closed = false;

  constructor(connectionString: string, options: { max?: number } = {}) {
    this.connectionString = connectionString;
    this.pool = new pg.Pool({ connectionString, max: options.max ?? 10 });
    // An idle client's error (database restart) must not crash the process; the next query reconnects.
    this.pool.on('error', () => {});
    this.direct = this.executor(this.pool);
  }

  private text(sql: string): string {
    let t = this.texts.get(sql);
    if (t === undefined) {
      t = numbered(sql);
      this.texts.set(sql, t);
    }
    return t;
  }

  private executor(on: pg.Pool | pg.PoolClient): SqlExecutor {
    const query = async (text: string, params?: readonly unknown[]) => {
      try {
        return await on.query(text, params as unknown[] | undefined);
      } catch (err) {
        throw mapPgError(err);
      }
    };
    return {
      run: async (sql, params) => (await query(this.text(sql), params)).rowCount ?? 0,
      get: async <R>(sql: string, params?: readonly unknown[]) =>
        (await query(this.text(sql), params)).rows[0] as R | undefined,
      all: async <R>(sql: string, params?: readonly unknown[]) => (await query(this.text(sql), params)).rows as R[],
      exec: async (script) => void (await query(script)),
    };
  }

  run(sql: string, params?: readonly unknown[]): Promise<number> {
    return this.direct.run(sql, params);
  }

  get<R>(sql: string, params?: readonly unknown[]): Promise<R | undefined> {
    return this.direct.get<R>(sql, params);
  }

  all<R>(sql: string, params?: readonly unknown[]): Promise<R[]> {
    return this.direct.all<R>(sql, params);
  }

  exec(script: string): Promise<void> {
    return this.direct.exec(script);
  }

  async transaction<T>(body: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    const client = await this.pool.connect().catch((err: unknown) => {
      throw mapPgError(err);
    });
    // A checked-out connection has no listener of the pool's: when the server goes away between two
    // statements (a restart), pg emits 'error' on it, which would otherwise crash the process. The
    // next statement then fails (storage_unavailable) and the connection is discarded below.
    let broken: Error | undefined;
    const lost = (err: Error) => (broken = err);
    client.on('error', lost);
    const on = this.executor(client);
    const tx: SqlTransaction = {
      ...on,
      lock: async (lock) => void (await on.get('SELECT pg_advisory_xact_lock(?::bigint)', [LOCKS[lock]])),
      // Delivered by PostgreSQL when, and only if, the transaction commits.
      notify: (channel) => on.exec(`NOTIFY ${CHANNELS[channel]}`),
    };
    try {
      await on.exec('BEGIN');
      const result = await body(tx);
      await on.exec('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    } finally {
      client.off('error', lost);
      // A connection that was lost, or could not even roll back, is discarded rather than reused.
      client.release(broken);
    }
  }

  listen(channel: SqlChannel, listener: () => void): () => void {
    let set = this.listeners.get(channel);
    if (!set) this.listeners.set(channel, (set = new Set()));
    set.add(listener);
    if (!this.listening) {
      this.listening = true;
      void this.connectListener();
    }
    return () => set.delete(listener);
  }

  notificationsConnected(): boolean {
    return !this.listening || this.listenClient !== undefined;
  }

  private wake(channel?: SqlChannel): void {
    for (const [c, set] of this.listeners) if (channel === undefined || c === channel) for (const l of set) l();
  }

  /** One LISTEN connection per process; on loss it reconnects and tells every listener to catch up. */
  private async connectListener(): Promise<void> {
    this.listenRetry = undefined;
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.connectionString });
    const retry = () => {
      if (this.listenClient === client) this.listenClient = undefined;
      client.end().catch(() => {});
      if (!this.closed && !this.listenRetry) this.listenRetry = setTimeout(() => void this.connectListener(), 1000);
    };
    client.on('error', retry);
    client.on('end', retry);
    client.on('notification', (n) => {
      const channel = (Object.keys(CHANNELS) as SqlChannel[]).find((c) => CHANNELS[c] === n.channel);
      if (channel) this.wake(channel);
    });
    try {
      await client.connect();
      for (const name of Object.values(CHANNELS)) await client.query(`LISTEN ${name}`);
      if (this.closed) {
        // close() ran while this connection was being opened.
        client.removeAllListeners('end');
        await client.end();
        return;
      }
      this.listenClient = client;
      this.wake();
    } catch {
      retry();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.listenRetry) clearTimeout(this.listenRetry);
    const listener = this.listenClient;
    this.listenClient = undefined;
    await listener?.end().catch(() => {});
    await this.pool.end();
  }
}
