import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { AuditEvent } from '@latchkey/protocol';
import { LatchkeyError } from '../../errors.ts';
import { GENESIS } from '../audit_chain.ts';
import { migrations } from '../migrations/index.ts';
import { guardSqlite } from './sqlite_errors.ts';
import type {
  AuditCheckpoint,
  AuditFilter,
  AuditRecord,
  ClientRecord,
  FeedEventRecord,
  FeedStream,
  KeyTransition,
  SigningKeyRecord,
  Storage,
  AlertRecord,
  NewAlert,
  WithAudit,
  PolicyVersionRecord,
  PolicyVersionSummary,
} from '../ports.ts';

/** Thrown inside a transaction to roll it back when a key is no longer in its expected state. */
class TransitionAborted extends Error {}
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

/** Audit rows per multi-row INSERT (10 parameters each, well under SQLite's limit). */
const AUDIT_CHUNK = 50;
const ROW = Array(13).fill('?').join(', ');

/** Embedded storage: one SQLite file in WAL mode. Statements are prepared once. */
export class SqliteStorage implements Storage {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private stmts!: ReturnType<SqliteStorage['prepare']>;

  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    guardSqlite(this, SqliteStorage.prototype);
  }

  async migrate(): Promise<void> {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
    );
    const apply = this.db.transaction(() => {
      const done = new Set(
        (this.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version),
      );
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        this.db.exec(m.sqlite);
        this.db
          .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
          .run(m.version, m.name, new Date().toISOString());
      }
    });
    try {
      apply.immediate();
    } catch (err) {
      throw new LatchkeyError('migration_failed', `SQLite migration failed: ${(err as Error).message}`, { cause: err });
    }
    this.stmts = this.prepare();
  }

  private prepare() {
    const db = this.db;
    return {
      insertClient: db.prepare(`INSERT INTO clients (${CLIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`),
      getClient: db.prepare(`SELECT ${CLIENT_SELECT} FROM clients WHERE client_id = ?`),
      lockClient: db.prepare('UPDATE clients SET locked_until = ? WHERE client_id = ?'),
      updateClient: db.prepare(
        'UPDATE clients SET metadata = ?, secret_hash = ?, registration_token_hash = ?, updated_at = ?, disabled = ? WHERE client_id = ?',
      ),
      deleteClient: db.prepare('DELETE FROM clients WHERE client_id = ?'),
      listClients: db.prepare(`SELECT ${CLIENT_SELECT} FROM clients ORDER BY created_at, client_id`),
      insertKey: db.prepare(`INSERT INTO signing_keys (${KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      allKeys: db.prepare(`SELECT ${KEY_COLUMNS} FROM signing_keys ORDER BY created_at DESC, kid`),
      transitionKey: db.prepare(
        `UPDATE signing_keys SET state = ?, activated_at = CASE WHEN ? = 'current' THEN ? ELSE activated_at END,
           retired_at = CASE WHEN ? IN ('retired', 'revoked') THEN ? ELSE retired_at END, remove_after = COALESCE(?, remove_after)
         WHERE kid = ? AND state = ?`,
      ),
      expiredKeys: db.prepare(
        `SELECT kid FROM signing_keys WHERE state IN ('retired', 'revoked') AND remove_after IS NOT NULL AND remove_after <= ?`,
      ),
      deleteKey: db.prepare('DELETE FROM signing_keys WHERE kid = ?'),
      tryLease: db.prepare(
        `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE leases.holder = excluded.holder OR leases.expires_at < ?`,
      ),
      publishedKeys: db.prepare(
        `SELECT ${KEY_COLUMNS} FROM signing_keys WHERE state <> 'revoked' ORDER BY created_at DESC, kid`,
      ),
      currentKey: db.prepare(`SELECT ${KEY_COLUMNS} FROM signing_keys WHERE state = 'current'`),
      useOnce: db.prepare(
        'INSERT INTO used_jtis (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at WHERE used_jtis.expires_at < ?',
      ),
      appendFeed: db.prepare(`INSERT INTO feed_events (${FEED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`),
      feedAll: db.prepare(
        `SELECT seq, ${FEED_COLUMNS} FROM feed_events WHERE seq > ? AND expires_at > ? ORDER BY seq LIMIT ?`,
      ),
      feedStream: db.prepare(
        `SELECT seq, ${FEED_COLUMNS} FROM feed_events WHERE stream = ? AND seq > ? AND expires_at > ? ORDER BY seq LIMIT ?`,
      ),
      latestSeq: db.prepare('SELECT COALESCE(MAX(seq), 0) AS seq FROM feed_events'),
      isRevoked: db.prepare(
        `SELECT 1 FROM feed_events WHERE stream = 'revocations' AND kind = 'token' AND iss = ? AND ref = ? LIMIT 1`,
      ),
      notBefore: db.prepare(
        `SELECT MAX(not_before) AS nb FROM feed_events WHERE stream = 'revocations' AND kind = ? AND iss = ? AND ref = ? AND expires_at > ?`,
      ),
      insertAudit: db.prepare(`INSERT INTO audit_events (seq, prev_hash, hash, ${AUDIT_COLUMNS}) VALUES (${ROW})`),
      // One statement per AUDIT_CHUNK rows: far fewer native calls than a row at a time.
      insertAuditChunk: db.prepare(
        `INSERT INTO audit_events (seq, prev_hash, hash, ${AUDIT_COLUMNS}) VALUES ${Array(AUDIT_CHUNK).fill(`(${ROW})`).join(', ')}`,
      ),
      auditHead: db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1'),
      addCheckpoint: db.prepare(
        'INSERT INTO audit_checkpoints (seq, hash, time, kid, signature) VALUES (?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING',
      ),
      checkpoints: db.prepare('SELECT seq, hash, time, kid, signature FROM audit_checkpoints ORDER BY seq'),
      getSetting: db.prepare('SELECT value FROM settings WHERE name = ?'),
      insertSettingIfAbsent: db.prepare(
        'INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
      ),
      upsertSetting: db.prepare(
        'INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
      ),
      replaceSetting: db.prepare('UPDATE settings SET value = ? WHERE name = ? AND value = ?'),
      lastAuditBefore: db.prepare('SELECT MAX(seq) AS seq FROM audit_events WHERE time < ?'),
      pruneAudit: db.prepare('DELETE FROM audit_events WHERE seq <= ?'),
      pruneCheckpoints: db.prepare('DELETE FROM audit_checkpoints WHERE seq < ?'),
      insertAlert: db.prepare(
        `INSERT INTO alerts (${ALERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
      ),
      purgeJtis: db.prepare('DELETE FROM used_jtis WHERE expires_at < ?'),
      purgeFeed: db.prepare('DELETE FROM feed_events WHERE expires_at < ?'),
    };
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  /** Runs `change` and, when `changed` says it took effect, appends `audit` — in one transaction. */
  private withAudit<T>(audit: WithAudit, change: () => T, changed: (r: T) => boolean = () => true): T {
    if (!audit || audit.length === 0) return change();
    return this.db
      .transaction(() => {
        const r = change();
        if (changed(r)) this.appendAll([...audit]);
        return r;
      })
      .immediate();
  }

  async createClient(c: ClientRecord, audit?: WithAudit): Promise<void> {
    try {
      this.withAudit(audit, () => this.stmts.insertClient.run(...clientParams(c), c.disabled ? 1 : 0));
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
        throw new LatchkeyError('storage_conflict', 'client id already exists');
      throw err;
    }
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const row = this.stmts.getClient.get(clientId) as ClientRow | undefined;
    return row && clientFromRow(row);
  }

  async updateClient(c: ClientRecord, audit?: WithAudit): Promise<boolean> {
    return this.withAudit(
      audit,
      () =>
        this.stmts.updateClient.run(
          JSON.stringify(c.metadata),
          c.secretHash,
          c.registrationTokenHash,
          c.updatedAt,
          c.disabled ? 1 : 0,
          c.clientId,
        ).changes === 1,
      (ok) => ok,
    );
  }

  async deleteClient(clientId: string, audit?: WithAudit): Promise<boolean> {
    return this.withAudit(
      audit,
      () => this.stmts.deleteClient.run(clientId).changes === 1,
      (ok) => ok,
    );
  }

  async listClients(): Promise<ClientRecord[]> {
    return (this.stmts.listClients.all() as ClientRow[]).map(clientFromRow);
  }

  async insertKey(k: SigningKeyRecord, audit?: WithAudit): Promise<void> {
    try {
      this.withAudit(audit, () => this.stmts.insertKey.run(...keyParams(k)));
    } catch (err) {
      if (String((err as { code?: string }).code).startsWith('SQLITE_CONSTRAINT'))
        throw new LatchkeyError('storage_conflict', 'a current key already exists');
      throw err;
    }
  }

  async listPublishedKeys(): Promise<SigningKeyRecord[]> {
    return (this.stmts.publishedKeys.all() as KeyRow[]).map(keyFromRow);
  }

  async listKeys(): Promise<SigningKeyRecord[]> {
    return (this.stmts.allKeys.all() as KeyRow[]).map(keyFromRow);
  }

  async transitionKeys(transitions: KeyTransition[], audit?: WithAudit): Promise<boolean> {
    try {
      return this.db
        .transaction((list: KeyTransition[]) => {
          for (const t of list) {
            const r = this.stmts.transitionKey.run(t.to, t.to, t.at, t.to, t.at, t.removeAfter ?? null, t.kid, t.from);
            if (r.changes !== 1) throw new TransitionAborted();
          }
          if (audit && audit.length > 0) this.appendAll([...audit]);
          return true;
        })
        .immediate(transitions);
    } catch (err) {
      if (err instanceof TransitionAborted) return false;
      if (String((err as { code?: string }).code).startsWith('SQLITE_CONSTRAINT')) return false;
      throw err;
    }
  }

  async removeExpiredKeys(now: number, audit?: (kid: string) => AuditEvent[]): Promise<string[]> {
    return this.db
      .transaction(() => {
        const kids = (this.stmts.expiredKeys.all(now) as { kid: string }[]).map((r) => r.kid);
        for (const kid of kids) this.stmts.deleteKey.run(kid);
        const events = audit ? kids.flatMap(audit) : [];
        if (events.length > 0) this.appendAll(events);
        return kids;
      })
      .immediate();
  }

  async tryLease(name: string, holder: string, expiresAtMs: number): Promise<boolean> {
    return this.stmts.tryLease.run(name, holder, expiresAtMs, Date.now()).changes === 1;
  }

  async getCurrentKey(): Promise<SigningKeyRecord | undefined> {
    const row = this.stmts.currentKey.get() as KeyRow | undefined;
    return row && keyFromRow(row);
  }

  async useOnce(id: string, expiresAt: number): Promise<boolean> {
    // An expired entry is taken over (the WHERE on the upsert); a live one makes the insert a no-op.
    return this.stmts.useOnce.run(id, expiresAt, Math.floor(Date.now() / 1000)).changes === 1;
  }

  private readonly feedListeners = new Set<() => void>();

  async appendFeedEvent(e: Omit<FeedEventRecord, 'seq'>, audit?: WithAudit): Promise<FeedEventRecord> {
    const { seq } = this.withAudit(audit, () => this.stmts.appendFeed.get(...feedParams(e)) as { seq: number });
    for (const l of this.feedListeners) l();
    return { ...e, seq };
  }

  async listFeedEvents(
    stream: FeedStream | 'all',
    after: number,
    limit: number,
    now: number,
  ): Promise<FeedEventRecord[]> {
    const rows = (
      stream === 'all'
        ? this.stmts.feedAll.all(after, now, limit)
        : this.stmts.feedStream.all(stream, after, now, limit)
    ) as FeedRow[];
    return rows.map(feedFromRow);
  }

  async latestFeedSeq(): Promise<number> {
    return Number((this.stmts.latestSeq.get() as { seq: number }).seq);
  }

  onFeedAppended(listener: () => void): () => void {
    // One process owns a SQLite file, so its own appends are all there is to hear.
    this.feedListeners.add(listener);
    return () => this.feedListeners.delete(listener);
  }

  async isTokenRevoked(issuer: string, jti: string): Promise<boolean> {
    return this.stmts.isRevoked.get(issuer, jti) !== undefined;
  }

  async revocationNotBefore(issuer: string, kind: 'client' | 'subject', ref: string): Promise<number | undefined> {
    const nb = (this.stmts.notBefore.get(kind, issuer, ref, Math.floor(Date.now() / 1000)) as { nb: number | null }).nb;
    return nb === null ? undefined : Number(nb);
  }

  private readonly appendAll = (events: AuditEvent[]): void => {
    this.db
      .transaction((list: AuditEvent[]) => {
        const head = this.stmts.auditHead.get() as { seq: number; hash: string | null } | undefined;
        const rows = chainRows(list, head ? Number(head.seq) : 0, head?.hash ?? GENESIS);
        let i = 0;
        for (; i + AUDIT_CHUNK <= rows.length; i += AUDIT_CHUNK)
          this.stmts.insertAuditChunk.run(rows.slice(i, i + AUDIT_CHUNK).flat());
        for (; i < rows.length; i++) this.stmts.insertAudit.run(...(rows[i] as unknown[]));
      })
      .immediate(events);
  };

  async queryAuditEvents(filter: AuditFilter): Promise<AuditRecord[]> {
    const w = auditWhere(filter, () => '?');
    const rows = this.db
      .prepare(
        `SELECT seq, prev_hash, hash, ${AUDIT_COLUMNS} FROM audit_events WHERE ${w.sql} ORDER BY seq ${filter.newest ? 'DESC' : ''} LIMIT ?`,
      )
      .all(...w.values, filter.limit) as AuditRow[];
    if (filter.newest) rows.reverse();
    return rows.map(auditRecordFromRow);
  }

  async auditHead(): Promise<{ seq: number; hash: string } | undefined> {
    const h = this.stmts.auditHead.get() as { seq: number; hash: string | null } | undefined;
    return h && h.hash !== null ? { seq: Number(h.seq), hash: h.hash } : undefined;
  }

  async addAuditCheckpoint(c: AuditCheckpoint): Promise<void> {
    this.stmts.addCheckpoint.run(c.seq, c.hash, c.time, c.kid, c.signature);
  }

  async listAuditCheckpoints(): Promise<AuditCheckpoint[]> {
    return (this.stmts.checkpoints.all() as AuditCheckpoint[]).map((c) => ({ ...c, seq: Number(c.seq) }));
  }

  async appendAuditEvents(events: AuditEvent[]): Promise<void> {
    if (events.length > 0) this.appendAll(events);
  }

  async listAuditEvents(options: { type?: string; limit?: number } = {}): Promise<AuditEvent[]> {
    const limit = options.limit ?? 1000;
    const rows = (
      options.type
        ? this.db
            .prepare(`SELECT seq, ${AUDIT_COLUMNS} FROM audit_events WHERE type = ? ORDER BY seq DESC LIMIT ?`)
            .all(options.type, limit)
        : this.db.prepare(`SELECT seq, ${AUDIT_COLUMNS} FROM audit_events ORDER BY seq DESC LIMIT ?`).all(limit)
    ) as AuditRow[];
    return rows.reverse().map(auditFromRow);
  }

  async lockClient(clientId: string, until: number | null, audit?: WithAudit): Promise<boolean> {
    return this.withAudit(
      audit,
      () => this.stmts.lockClient.run(until, clientId).changes === 1,
      (ok) => ok,
    );
  }

  async lastAuditSeqBefore(time: string): Promise<number | undefined> {
    const r = this.stmts.lastAuditBefore.get(time) as { seq: number | null };
    return r.seq === null ? undefined : Number(r.seq);
  }

  async pruneAuditEvents(throughSeq: number): Promise<number> {
    return this.db
      .transaction(() => {
        this.stmts.pruneCheckpoints.run(throughSeq);
        return this.stmts.pruneAudit.run(throughSeq).changes;
      })
      .immediate();
  }

  async insertAlert(a: NewAlert, audit?: (alert: AlertRecord) => AuditEvent[]): Promise<AlertRecord> {
    return this.db
      .transaction(() => {
        const { id } = this.stmts.insertAlert.get(...alertParams(a)) as { id: number };
        const alert = { ...a, id: Number(id) };
        const events = audit?.(alert) ?? [];
        if (events.length > 0) this.appendAll(events);
        return alert;
      })
      .immediate();
  }

  async listAlerts(f: { after?: number; detector?: string; limit: number }): Promise<AlertRecord[]> {
    const rows = (
      f.detector
        ? this.db
            .prepare(`SELECT id, ${ALERT_COLUMNS} FROM alerts WHERE id > ? AND detector = ? ORDER BY id LIMIT ?`)
            .all(f.after ?? 0, f.detector, f.limit)
        : this.db
            .prepare(`SELECT id, ${ALERT_COLUMNS} FROM alerts WHERE id > ? ORDER BY id LIMIT ?`)
            .all(f.after ?? 0, f.limit)
    ) as AlertRow[];
    return rows.map(alertFromRow);
  }

  async insertPolicyVersion(p: PolicyVersionRecord, audit?: WithAudit): Promise<boolean> {
    try {
      this.withAudit(audit, () =>
        this.db
          .prepare(`INSERT INTO policy_versions (${POLICY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
          .run(...policyParams(p)),
      );
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return false;
      throw err;
    }
  }

  async getPolicyVersion(version?: number): Promise<PolicyVersionRecord | undefined> {
    const row = (
      version === undefined
        ? this.db.prepare(`SELECT ${POLICY_COLUMNS} FROM policy_versions ORDER BY version DESC LIMIT 1`).get()
        : this.db.prepare(`SELECT ${POLICY_COLUMNS} FROM policy_versions WHERE version = ?`).get(version)
    ) as PolicyRow | undefined;
    return row && policyFromRow(row);
  }

  async listPolicyVersions(limit: number): Promise<PolicyVersionSummary[]> {
    return (
      this.db
        .prepare(`SELECT ${POLICY_SUMMARY_COLUMNS} FROM policy_versions ORDER BY version DESC LIMIT ?`)
        .all(limit) as PolicyRow[]
    ).map(policySummaryFromRow);
  }

  async getSetting(name: string): Promise<string | undefined> {
    return (this.stmts.getSetting.get(name) as { value: string } | undefined)?.value;
  }

  async setSettingIfAbsent(name: string, value: string): Promise<string> {
    this.stmts.insertSettingIfAbsent.run(name, value);
    return (await this.getSetting(name)) as string;
  }

  async setSetting(name: string, value: string): Promise<void> {
    this.stmts.upsertSetting.run(name, value);
  }

  async replaceSetting(name: string, expected: string, value: string, audit?: WithAudit): Promise<boolean> {
    return this.withAudit(
      audit,
      () => this.stmts.replaceSetting.run(value, name, expected).changes === 1,
      (ok) => ok,
    );
  }

  async purgeExpired(now: number): Promise<number> {
    return this.stmts.purgeJtis.run(now).changes + this.stmts.purgeFeed.run(now).changes;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
