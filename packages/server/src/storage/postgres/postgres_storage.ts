import pg from 'pg';
import type { AuditEvent } from '@latchkey/protocol';
import { LatchkeyError } from '../../errors.ts';
import { GENESIS } from '../audit_chain.ts';
import { migrations } from '../migrations/index.ts';
import type {
  AlertRecord,
  NewAlert,
  WithAudit,
  PolicyVersionRecord,
  PolicyVersionSummary,
  AuditCheckpoint,
  AuditFilter,
  AuditRecord,
  ClientRecord,
  FeedEventRecord,
  FeedStream,
  KeyTransition,
  SigningKeyRecord,
  Storage,
} from '../ports.ts';
import {
  POLICY_COLUMNS,
  POLICY_SUMMARY_COLUMNS,
  policyFromRow,
  policyParams,
  policySummaryFromRow,
  type PolicyRow,
  ALERT_COLUMNS,
  alertFromRow,
  alertParams,
  type AlertRow,
  CLIENT_SELECT,
  AUDIT_COLUMNS,
  CLIENT_COLUMNS,
  FEED_COLUMNS,
  auditRecordFromRow,
  auditWhere,
  chainRows,
  KEY_COLUMNS,
  auditFromRow,
  clientFromRow,
  clientParams,
  feedFromRow,
  feedParams,
  keyFromRow,
  keyParams,
  type AuditRow,
  type ClientRow,
  type FeedRow,
  type KeyRow,
} from '../rows.ts';

/** Advisory lock id that serializes audit appends (one hash chain). */
const AUDIT_LOCK = 0x6c6b61756474;
/** Advisory lock id that serializes feed appends. */
const FEED_LOCK = 0x6c6b66656564;
const FEED_CHANNEL = 'latchkey_feed';

/** Advisory lock id that serializes migrations across replicas ("latchkey" in ASCII, truncated). */
const MIGRATION_LOCK = 0x6c617463686b;

/** PostgreSQL storage for several IdP replicas sharing one database. */
export class PostgresStorage implements Storage {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly connectionString: string;

  constructor(connectionString: string, options: { max?: number } = {}) {
    this.connectionString = connectionString;
    this.pool = new pg.Pool({ connectionString, max: options.max ?? 10 });
    // An idle client's error (database restart) must not crash the process; the next query reconnects.
    this.pool.on('error', () => {});
  }

  private async q<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '23505') throw new LatchkeyError('storage_conflict', 'unique constraint violated', { cause: err });
      if (code === undefined || code.startsWith('08') || code === '57P01' || code === '57P03') {
        throw new LatchkeyError('storage_unavailable', 'PostgreSQL is unreachable', { cause: err });
      }
      throw err;
    }
  }

  async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
      );
      const done = new Set(
        (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
      );
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        await client.query(m.postgres);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          new Date().toISOString(),
        ]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw new LatchkeyError('migration_failed', `PostgreSQL migration failed: ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      client.release();
    }
  }

  async ping(): Promise<void> {
    await this.q('SELECT 1');
  }

  /**
   * One transaction: `work`, then — when it says it changed something — the audit events, chained
   * under the audit lock. A unique violation is `storage_conflict`; other failures
   * `storage_unavailable`. `work` may return `rollback: true` to undo and return its result.
   */
  private async tx<T>(
    work: (c: pg.PoolClient) => Promise<{ result: T; changed: boolean; rollback?: boolean }>,
    audit: WithAudit | ((r: T) => AuditEvent[]),
    what: string,
  ): Promise<T> {
    const client = await this.pool.connect().catch((err: unknown) => {
      throw new LatchkeyError('storage_unavailable', 'PostgreSQL is unreachable', { cause: err });
    });
    try {
      await client.query('BEGIN');
      const r = await work(client);
      if (r.rollback) {
        await client.query('ROLLBACK');
        return r.result;
      }
      const events = r.changed ? (typeof audit === 'function' ? audit(r.result) : (audit ?? [])) : [];
      if (events.length > 0) await this.appendAuditIn(client, events);
      await client.query('COMMIT');
      return r.result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      if (err instanceof LatchkeyError) throw err;
      if ((err as { code?: string }).code === '23505')
        throw new LatchkeyError('storage_conflict', 'unique constraint violated', { cause: err });
      throw new LatchkeyError('storage_unavailable', `could not ${what}`, { cause: err });
    } finally {
      client.release();
    }
  }

  async createClient(c: ClientRecord, audit?: WithAudit): Promise<void> {
    const sql = `INSERT INTO clients (${CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`;
    if (!audit?.length) {
      await this.q(sql, [...clientParams(c), c.disabled]);
      return;
    }
    await this.tx(
      async (cl) => (await cl.query(sql, [...clientParams(c), c.disabled]), { result: undefined, changed: true }),
      audit,
      'create the client',
    );
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const r = await this.q<ClientRow>(`SELECT ${CLIENT_SELECT} FROM clients WHERE client_id = $1`, [clientId]);
    return r.rows[0] && clientFromRow(r.rows[0]);
  }

  /** One statement that changed a row when its rowCount is 1, with its audit events. */
  private async changeOne(sql: string, values: unknown[], audit: WithAudit, what: string): Promise<boolean> {
    if (!audit?.length) return (await this.q(sql, values)).rowCount === 1;
    return this.tx(
      async (cl) => {
        const ok = (await cl.query(sql, values)).rowCount === 1;
        return { result: ok, changed: ok };
      },
      audit,
      what,
    );
  }

  async updateClient(c: ClientRecord, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(
      'UPDATE clients SET metadata = $1, secret_hash = $2, registration_token_hash = $3, updated_at = $4, disabled = $5 WHERE client_id = $6',
      [JSON.stringify(c.metadata), c.secretHash, c.registrationTokenHash, c.updatedAt, c.disabled, c.clientId],
      audit,
      'update the client',
    );
  }

  async deleteClient(clientId: string, audit?: WithAudit): Promise<boolean> {
    return this.changeOne('DELETE FROM clients WHERE client_id = $1', [clientId], audit, 'delete the client');
  }

  async listClients(): Promise<ClientRecord[]> {
    return (await this.q<ClientRow>(`SELECT ${CLIENT_SELECT} FROM clients ORDER BY created_at, client_id`)).rows.map(
      clientFromRow,
    );
  }

  async insertKey(k: SigningKeyRecord, audit?: WithAudit): Promise<void> {
    const sql = `INSERT INTO signing_keys (${KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`;
    if (!audit?.length) {
      await this.q(sql, keyParams(k));
      return;
    }
    await this.tx(
      async (cl) => (await cl.query(sql, keyParams(k)), { result: undefined, changed: true }),
      audit,
      'insert the key',
    );
  }

  async listPublishedKeys(): Promise<SigningKeyRecord[]> {
    const r = await this.q<KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM signing_keys WHERE state <> 'revoked' ORDER BY created_at DESC, kid`,
    );
    return r.rows.map(keyFromRow);
  }

  async listKeys(): Promise<SigningKeyRecord[]> {
    return (await this.q<KeyRow>(`SELECT ${KEY_COLUMNS} FROM signing_keys ORDER BY created_at DESC, kid`)).rows.map(
      keyFromRow,
    );
  }

  async transitionKeys(transitions: KeyTransition[], audit?: WithAudit): Promise<boolean> {
    try {
      return await this.tx(
        async (cl) => {
          for (const t of transitions) {
            const r = await cl.query(
              `UPDATE signing_keys SET state = $1, activated_at = CASE WHEN $1 = 'current' THEN $2 ELSE activated_at END,
               retired_at = CASE WHEN $1 IN ('retired', 'revoked') THEN $2 ELSE retired_at END, remove_after = COALESCE($3, remove_after)
             WHERE kid = $4 AND state = $5`,
              [t.to, t.at, t.removeAfter ?? null, t.kid, t.from],
            );
            if (r.rowCount !== 1) return { result: false, changed: false, rollback: true };
          }
          return { result: true, changed: true };
        },
        audit,
        'change key states',
      );
    } catch (err) {
      // Another replica made a second current or next key first.
      if (err instanceof LatchkeyError && err.code === 'storage_conflict') return false;
      throw err;
    }
  }

  async removeExpiredKeys(now: number, audit?: (kid: string) => AuditEvent[]): Promise<string[]> {
    return this.tx(
      async (cl) => {
        const r = await cl.query<{ kid: string }>(
          `DELETE FROM signing_keys WHERE state IN ('retired', 'revoked') AND remove_after IS NOT NULL AND remove_after <= $1 RETURNING kid`,
          [now],
        );
        const kids = r.rows.map((x) => x.kid);
        return { result: kids, changed: kids.length > 0 };
      },
      (kids) => (audit ? kids.flatMap(audit) : []),
      'remove expired keys',
    );
  }

  async tryLease(name: string, holder: string, expiresAtMs: number): Promise<boolean> {
    const r = await this.q(
      `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE leases.holder = excluded.holder OR leases.expires_at < $4`,
      [name, holder, expiresAtMs, Date.now()],
    );
    return r.rowCount === 1;
  }

  async getCurrentKey(): Promise<SigningKeyRecord | undefined> {
    const r = await this.q<KeyRow>(`SELECT ${KEY_COLUMNS} FROM signing_keys WHERE state = 'current'`);
    return r.rows[0] && keyFromRow(r.rows[0]);
  }

  async useOnce(id: string, expiresAt: number): Promise<boolean> {
    const r = await this.q(
      'INSERT INTO used_jtis (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at WHERE used_jtis.expires_at < $3',
      [id, expiresAt, Math.floor(Date.now() / 1000)],
    );
    return r.rowCount === 1;
  }

  async appendFeedEvent(e: Omit<FeedEventRecord, 'seq'>, audit?: WithAudit): Promise<FeedEventRecord> {
    return this.tx(
      async (cl) => {
        // Appends are serialized so commit order equals seq order: a reader that has seen seq N
        // can never later find a smaller seq committed behind it. (Feed lock first, then audit lock.)
        await cl.query('SELECT pg_advisory_xact_lock($1)', [FEED_LOCK]);
        const r = await cl.query<{ seq: string }>(
          `INSERT INTO feed_events (${FEED_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq`,
          feedParams(e),
        );
        await cl.query(`NOTIFY ${FEED_CHANNEL}`);
        return { result: { ...e, seq: Number(r.rows[0]!.seq) }, changed: true };
      },
      audit,
      'append to the feed',
    );
  }

  async listFeedEvents(
    stream: FeedStream | 'all',
    after: number,
    limit: number,
    now: number,
  ): Promise<FeedEventRecord[]> {
    const r =
      stream === 'all'
        ? await this.q<FeedRow>(
            `SELECT seq, ${FEED_COLUMNS} FROM feed_events WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3`,
            [after, now, limit],
          )
        : await this.q<FeedRow>(
            `SELECT seq, ${FEED_COLUMNS} FROM feed_events WHERE stream = $1 AND seq > $2 AND expires_at > $3 ORDER BY seq LIMIT $4`,
            [stream, after, now, limit],
          );
    return r.rows.map(feedFromRow);
  }

  async latestFeedSeq(): Promise<number> {
    return Number((await this.q<{ seq: string }>('SELECT COALESCE(MAX(seq), 0) AS seq FROM feed_events')).rows[0]!.seq);
  }

  private readonly feedListeners = new Set<() => void>();
  private listenClient: pg.Client | undefined;
  private listenRetry: NodeJS.Timeout | undefined;
  private listenStarted = false;
  private closed = false;

  onFeedAppended(listener: () => void): () => void {
    this.feedListeners.add(listener);
    if (!this.listenStarted) {
      this.listenStarted = true;
      void this.listen();
    }
    return () => this.feedListeners.delete(listener);
  }

  /** One LISTEN connection per process; on loss it reconnects and tells listeners to catch up. */
  private async listen(): Promise<void> {
    this.listenRetry = undefined;
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.connectionString });
    const retry = () => {
      if (this.listenClient === client) this.listenClient = undefined;
      client.end().catch(() => {});
      if (!this.closed && !this.listenRetry) this.listenRetry = setTimeout(() => void this.listen(), 1000);
    };
    client.on('error', retry);
    client.on('end', retry);
    client.on('notification', () => {
      for (const l of this.feedListeners) l();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${FEED_CHANNEL}`);
      if (this.closed) {
        // close() ran while this connection was being opened.
        client.removeAllListeners('end');
        await client.end();
        return;
      }
      this.listenClient = client;
      for (const l of this.feedListeners) l();
    } catch {
      retry();
    }
  }

  async isTokenRevoked(issuer: string, jti: string): Promise<boolean> {
    const r = await this.q(
      `SELECT 1 FROM feed_events WHERE stream = 'revocations' AND kind = 'token' AND iss = $1 AND ref = $2 LIMIT 1`,
      [issuer, jti],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async revocationNotBefore(issuer: string, kind: 'client' | 'subject', ref: string): Promise<number | undefined> {
    const r = await this.q<{ nb: string | null }>(
      `SELECT MAX(not_before) AS nb FROM feed_events WHERE stream = 'revocations' AND kind = $1 AND iss = $2 AND ref = $3 AND expires_at > $4`,
      [kind, issuer, ref, Math.floor(Date.now() / 1000)],
    );
    const nb = r.rows[0]?.nb;
    return nb === null || nb === undefined ? undefined : Number(nb);
  }

  async appendAuditEvents(events: AuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.tx(async () => ({ result: undefined, changed: true }), events, 'append audit events');
  }

  /** Chains `events` after the head, inside the caller's transaction. */
  private async appendAuditIn(client: pg.PoolClient, events: readonly AuditEvent[]): Promise<void> {
    // One chain across replicas: appends are serialized, each batch continues from the head.
    await client.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_LOCK]);
    const head = (
      await client.query<{ seq: string; hash: string | null }>(
        'SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1',
      )
    ).rows[0];
    const rows = chainRows(events, head ? Number(head.seq) : 0, head?.hash ?? GENESIS);
    // Multi-row INSERTs of up to 500 rows: atomic with the rest of the transaction.
    for (let i = 0; i < rows.length; i += 500) {
      const chunk = rows.slice(i, i + 500);
      const values = chunk.flat();
      const placeholders = chunk.map(
        (_, r) => `(${Array.from({ length: 13 }, (_, j) => `$${r * 13 + j + 1}`).join(', ')})`,
      );
      await client.query(
        `INSERT INTO audit_events (seq, prev_hash, hash, ${AUDIT_COLUMNS}) VALUES ${placeholders.join(', ')}`,
        values,
      );
    }
  }

  async queryAuditEvents(filter: AuditFilter): Promise<AuditRecord[]> {
    const w = auditWhere(filter, (i) => `$${i}`);
    const r = await this.q<AuditRow>(
      `SELECT seq, prev_hash, hash, ${AUDIT_COLUMNS} FROM audit_events WHERE ${w.sql} ORDER BY seq ${filter.newest ? 'DESC' : ''} LIMIT $${w.values.length + 1}`,
      [...w.values, filter.limit],
    );
    if (filter.newest) r.rows.reverse();
    return r.rows.map(auditRecordFromRow);
  }

  async auditHead(): Promise<{ seq: number; hash: string } | undefined> {
    const h = (
      await this.q<{ seq: string; hash: string | null }>('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1')
    ).rows[0];
    return h && h.hash !== null ? { seq: Number(h.seq), hash: h.hash } : undefined;
  }

  async addAuditCheckpoint(c: AuditCheckpoint): Promise<void> {
    await this.q(
      'INSERT INTO audit_checkpoints (seq, hash, time, kid, signature) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING',
      [c.seq, c.hash, c.time, c.kid, c.signature],
    );
  }

  async listAuditCheckpoints(): Promise<AuditCheckpoint[]> {
    const r = await this.q<{ seq: string; hash: string; time: string; kid: string; signature: string }>(
      'SELECT seq, hash, time, kid, signature FROM audit_checkpoints ORDER BY seq',
    );
    return r.rows.map((c) => ({ ...c, seq: Number(c.seq) }));
  }

  async listAuditEvents(options: { type?: string; limit?: number } = {}): Promise<AuditEvent[]> {
    const limit = options.limit ?? 1000;
    const r = options.type
      ? await this.q<AuditRow>(
          `SELECT seq, ${AUDIT_COLUMNS} FROM audit_events WHERE type = $1 ORDER BY seq DESC LIMIT $2`,
          [options.type, limit],
        )
      : await this.q<AuditRow>(`SELECT seq, ${AUDIT_COLUMNS} FROM audit_events ORDER BY seq DESC LIMIT $1`, [limit]);
    return r.rows.reverse().map(auditFromRow);
  }

  async getSetting(name: string): Promise<string | undefined> {
    return (await this.q<{ value: string }>('SELECT value FROM settings WHERE name = $1', [name])).rows[0]?.value;
  }

  async setSettingIfAbsent(name: string, value: string): Promise<string> {
    await this.q('INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, value]);
    return (await this.getSetting(name)) as string;
  }

  async setSetting(name: string, value: string): Promise<void> {
    await this.q(
      'INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
      [name, value],
    );
  }

  async replaceSetting(name: string, expected: string, value: string, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(
      'UPDATE settings SET value = $1 WHERE name = $2 AND value = $3',
      [value, name, expected],
      audit,
      'replace a setting',
    );
  }

  async lockClient(clientId: string, until: number | null, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(
      'UPDATE clients SET locked_until = $1 WHERE client_id = $2',
      [until, clientId],
      audit,
      'lock the client',
    );
  }

  async lastAuditSeqBefore(time: string): Promise<number | undefined> {
    const r = (await this.q<{ seq: string | null }>('SELECT MAX(seq) AS seq FROM audit_events WHERE time < $1', [time]))
      .rows[0];
    return r?.seq == null ? undefined : Number(r.seq);
  }

  async pruneAuditEvents(throughSeq: number): Promise<number> {
    const client = await this.pool.connect().catch((err: unknown) => {
      throw new LatchkeyError('storage_unavailable', 'PostgreSQL is unreachable', { cause: err });
    });
    try {
      await client.query('BEGIN');
      await client.query('DELETE FROM audit_checkpoints WHERE seq < $1', [throughSeq]);
      const r = await client.query('DELETE FROM audit_events WHERE seq <= $1', [throughSeq]);
      await client.query('COMMIT');
      return r.rowCount ?? 0;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw new LatchkeyError('storage_unavailable', 'could not prune audit events', { cause: err });
    } finally {
      client.release();
    }
  }

  async insertAlert(a: NewAlert, audit?: (alert: AlertRecord) => AuditEvent[]): Promise<AlertRecord> {
    return this.tx(
      async (cl) => {
        const r = await cl.query<{ id: string }>(
          `INSERT INTO alerts (${ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
          alertParams(a),
        );
        return { result: { ...a, id: Number(r.rows[0]!.id) }, changed: true };
      },
      audit ?? [],
      'store the alert',
    );
  }

  async listAlerts(f: { after?: number; detector?: string; limit: number }): Promise<AlertRecord[]> {
    const r = f.detector
      ? await this.q<AlertRow>(
          `SELECT id, ${ALERT_COLUMNS} FROM alerts WHERE id > $1 AND detector = $2 ORDER BY id LIMIT $3`,
          [f.after ?? 0, f.detector, f.limit],
        )
      : await this.q<AlertRow>(`SELECT id, ${ALERT_COLUMNS} FROM alerts WHERE id > $1 ORDER BY id LIMIT $2`, [
          f.after ?? 0,
          f.limit,
        ]);
    return r.rows.map(alertFromRow);
  }

  async insertPolicyVersion(p: PolicyVersionRecord, audit?: WithAudit): Promise<boolean> {
    try {
      await this.tx(
        async (cl) => (
          await cl.query(
            `INSERT INTO policy_versions (${POLICY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
            policyParams(p),
          ),
          { result: undefined, changed: true }
        ),
        audit,
        'publish the policy version',
      );
      return true;
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === 'storage_conflict') return false;
      throw err;
    }
  }

  async getPolicyVersion(version?: number): Promise<PolicyVersionRecord | undefined> {
    const r =
      version === undefined
        ? await this.q<PolicyRow>(`SELECT ${POLICY_COLUMNS} FROM policy_versions ORDER BY version DESC LIMIT 1`)
        : await this.q<PolicyRow>(`SELECT ${POLICY_COLUMNS} FROM policy_versions WHERE version = $1`, [version]);
    return r.rows[0] && policyFromRow(r.rows[0]);
  }

  async listPolicyVersions(limit: number): Promise<PolicyVersionSummary[]> {
    return (
      await this.q<PolicyRow>(`SELECT ${POLICY_SUMMARY_COLUMNS} FROM policy_versions ORDER BY version DESC LIMIT $1`, [
        limit,
      ])
    ).rows.map(policySummaryFromRow);
  }

  async purgeExpired(now: number): Promise<number> {
    const a = await this.q('DELETE FROM used_jtis WHERE expires_at < $1', [now]);
    const b = await this.q('DELETE FROM feed_events WHERE expires_at < $1', [now]);
    return (a.rowCount ?? 0) + (b.rowCount ?? 0);
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
