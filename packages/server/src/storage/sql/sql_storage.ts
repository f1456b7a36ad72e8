import { type AuditEvent, type Clock, epochSeconds, systemClock } from '@latchkey/protocol';
import { LatchkeyError } from '../../errors.ts';
import { GENESIS } from '../audit_chain.ts';
import { migrations } from '../migrations/index.ts';
import type {
  AlertRecord,
  AuditCheckpoint,
  AuditFilter,
  AuditRecord,
  ClientRecord,
  FeedEventRecord,
  FeedStream,
  KeyTransition,
  NewAlert,
  PolicyVersionRecord,
  PolicyVersionSummary,
  SigningKeyRecord,
  UserPage,
  AuthorizationCodeRecord,
  RefreshFamilyRecord,
  RefreshTokenRecord,
  SessionRecord,
  ConsentRecord,
  PasskeyRecord,
  UserRecord,
  Storage,
  WithAudit,
  StatusListRecord,
  TokenStatusRecord,
  SsfStreamRecord,
  QueuedSetRecord,
  FederationIssuerRecord,
  FederationRuleRecord,
  ConsoleSessionRecord,
  AuditCount,
} from '../ports.ts';
import {
  type AlertRow,
  type ConsoleSessionRow,
  consoleSessionFromRow,
  type AuditRow,
  alertFromRow,
  alertParams,
  auditRecordFromRow,
  auditWhere,
  type ClientRow,
  chainRows,
  clientFromRow,
  clientParams,
  type FeedRow,
  feedFromRow,
  feedParams,
  type KeyRow,
  keyFromRow,
  keyParams,
  type PolicyRow,
  policyFromRow,
  policyParams,
  policySummaryFromRow,
  type UserRow,
  type CodeRow,
  type FamilyRow,
  type RefreshRow,
  type SessionRow,
  type ConsentRow,
  consentFromRow,
  sessionFromRow,
  familyFromRow,
  familyParams,
  refreshFromRow,
  refreshParams,
  codeFromRow,
  codeParams,
  userChangeParams,
  userFromRow,
  userParams,
  tokenStatusParams,
  type SsfStreamRow,
  ssfStreamFromRow,
  ssfStreamParams,
  queuedSetFromRow,
} from '../rows.ts';
import { auditChunks, SQL } from './sql_catalogue.ts';
import type { SqlDriver, SqlTransaction } from './sql_driver.ts';

/** Thrown inside a transaction to roll it back and return `result` instead. */
class Rollback<T> extends Error {
  readonly result: T;
  constructor(result: T) {
    super('rolled back');
    this.result = result;
  }
}

const isConflict = (err: unknown): boolean => err instanceof LatchkeyError && err.code === 'storage_conflict';

/**
 * Every port of `Storage`, written once over a `SqlDriver`. What differs between the databases
 * lives in the drivers; what the statements say lives in the catalogue; the audit chain is
 * appended in one place (`appendAuditIn`), inside the transaction of the change it records.
 */
export class SqlStorage implements Storage {
  readonly kind: 'sqlite' | 'postgres';
  private readonly db: SqlDriver;
  private readonly clock: Clock;
  private readonly appendedListeners: ((records: readonly AuditRecord[]) => void)[] = [];

  /** `clock`: leases, single-use entries and revocations expire by it (the system clock by default). */
  constructor(db: SqlDriver, clock: Clock = systemClock) {
    this.db = db;
    this.kind = db.kind;
    this.clock = clock;
  }

  private nowSeconds(): number {
    return epochSeconds(this.clock);
  }

  async migrate(): Promise<void> {
    try {
      await this.db.transaction(async (tx) => {
        await tx.lock('migration');
        await tx.exec(SQL.createMigrationsTable);
        const done = new Set((await tx.all<{ version: number }>(SQL.appliedMigrations)).map((r) => Number(r.version)));
        for (const m of migrations) {
          if (done.has(m.version)) continue;
          await tx.exec(m[this.db.dialect]);
          await tx.run(SQL.recordMigration, [m.version, m.name, new Date(this.clock.now()).toISOString()]);
        }
      });
    } catch (err) {
      const message = err instanceof LatchkeyError && err.cause instanceof Error ? err.cause.message : String(err);
      throw new LatchkeyError('migration_failed', `${this.db.kind} migration failed: ${message}`, { cause: err });
    }
  }

  async ping(): Promise<void> {
    await this.db.get(SQL.ping);
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  /**
   * One transaction: `work`, then the audit events it asks for (none when it changed nothing),
   * chained after the head. Throwing `Rollback` undoes everything and returns its result.
   */
  private async change<T>(
    work: (tx: SqlTransaction) => Promise<T>,
    audit: WithAudit | ((result: T) => readonly AuditEvent[]),
    changed: (result: T) => boolean = () => true,
  ): Promise<T> {
    let appended: readonly AuditRecord[] = [];
    try {
      const outcome = await this.db.transaction(async (tx) => {
        appended = [];
        const result = await work(tx);
        if (changed(result)) {
          const events = typeof audit === 'function' ? audit(result) : (audit ?? []);
          if (events.length > 0) appended = await this.appendAuditIn(tx, events);
        }
        return result;
      });
      this.announceAppended(appended);
      return outcome;
    } catch (err) {
      if (err instanceof Rollback) return err.result as T;
      throw err;
    }
  }

  /** One statement that changes at most one row, with its audit events when it did. */
  private changeOne(sql: string, params: readonly unknown[], audit: WithAudit): Promise<boolean> {
    if (!audit?.length) return this.db.run(sql, params).then((n) => n === 1);
    return this.change(
      async (tx) => (await tx.run(sql, params)) === 1,
      audit,
      (ok) => ok,
    );
  }

  /**
   * The one place the audit chain grows: serialized across replicas, continuing from the head.
   * Returns the rows as stored, for `onAuditAppended` once the transaction has committed.
   */
  private async appendAuditIn(tx: SqlTransaction, events: readonly AuditEvent[]): Promise<AuditRecord[]> {
    await tx.lock('audit');
    const head = await tx.get<{ seq: number | string; hash: string | null }>(SQL.auditHead);
    const rows = chainRows(events, head ? Number(head.seq) : 0, head?.hash ?? GENESIS);
    let at = 0;
    for (const size of auditChunks(rows.length)) {
      await tx.run(SQL.insertAuditRows(size), rows.slice(at, at + size).flat());
      at += size;
    }
    if (this.appendedListeners.length === 0) return []; // nobody to tell: no copies on the issuance path
    return events.map((e, i) => ({
      ...e,
      seq: rows[i]?.[0] as number,
      prevHash: rows[i]?.[1] as string,
      hash: rows[i]?.[2] as string,
    }));
  }

  onAuditAppended(listener: (records: readonly AuditRecord[]) => void): void {
    this.appendedListeners.push(listener);
  }

  private announceAppended(records: readonly AuditRecord[]): void {
    if (records.length > 0) for (const listener of this.appendedListeners) listener(records);
  }

  // Clients

  async createClient(c: ClientRecord, audit?: WithAudit): Promise<void> {
    try {
      await this.change((tx) => tx.run(SQL.insertClient, [...clientParams(c), c.disabled]), audit);
    } catch (err) {
      if (isConflict(err)) throw new LatchkeyError('storage_conflict', 'client id already exists', { cause: err });
      throw err;
    }
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const row = await this.db.get<ClientRow>(SQL.getClient, [clientId]);
    return row && clientFromRow(row);
  }

  async listClients(): Promise<ClientRecord[]> {
    return (await this.db.all<ClientRow>(SQL.listClients)).map(clientFromRow);
  }

  updateClient(c: ClientRecord, audit?: WithAudit): Promise<boolean> {
    const params = [JSON.stringify(c.metadata), c.secretHash, c.registrationTokenHash, c.updatedAt, c.disabled];
    return this.changeOne(SQL.updateClient, [...params, c.clientId], audit);
  }

  deleteClient(clientId: string, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(SQL.deleteClient, [clientId], audit);
  }

  lockClient(clientId: string, until: number | null, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(SQL.lockClient, [until, clientId], audit);
  }

  // Users

  async createUser(u: UserRecord, audit?: WithAudit): Promise<void> {
    try {
      await this.change((tx) => tx.run(SQL.insertUser, userParams(u)), audit);
    } catch (err) {
      if (isConflict(err)) throw new LatchkeyError('storage_conflict', 'the username is taken', { cause: err });
      throw err;
    }
  }

  async getUser(sub: string): Promise<UserRecord | undefined> {
    const row = await this.db.get<UserRow>(SQL.getUser, [sub]);
    return row && userFromRow(row);
  }

  async getUserByUsername(usernameKey: string): Promise<UserRecord | undefined> {
    const row = await this.db.get<UserRow>(SQL.getUserByUsername, [usernameKey]);
    return row && userFromRow(row);
  }

  async listUsers(options: { after?: string; limit: number }): Promise<UserPage> {
    const rows = await this.db.all<UserRow>(SQL.listUsers, [options.after ?? '', options.limit + 1]);
    const users = rows.slice(0, options.limit).map(userFromRow);
    return { users, next: rows.length > options.limit ? (users.at(-1)?.usernameKey ?? null) : null };
  }

  updateUser(u: UserRecord, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(SQL.updateUser, [...userChangeParams(u), u.sub], audit);
  }

  deleteUser(sub: string, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(SQL.deleteUser, [sub], audit);
  }

  async useTotpStep(sub: string, step: number): Promise<boolean> {
    return (await this.db.run(SQL.useTotpStep, [step, sub, step])) === 1;
  }

  async setRecoveryCodes(sub: string, hashes: readonly string[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run(SQL.clearRecoveryCodes, [sub]);
      for (const h of hashes) await tx.run(SQL.insertRecoveryCode, [sub, h]);
    });
  }

  async useRecoveryCode(sub: string, hash: string, now: number): Promise<boolean> {
    return (await this.db.run(SQL.useRecoveryCode, [now, sub, hash])) === 1;
  }

  async recoveryCodesLeft(sub: string): Promise<number> {
    return Number((await this.db.get<{ n: number | string }>(SQL.recoveryCodesLeft, [sub]))?.n ?? 0);
  }

  async addPasskey(k: PasskeyRecord): Promise<void> {
    try {
      await this.db.run(SQL.insertPasskey, [
        k.credentialId,
        k.sub,
        k.publicKey,
        k.counter,
        JSON.stringify(k.transports),
        k.createdAt,
        k.lastUsedAt,
      ]);
    } catch (err) {
      if (isConflict(err))
        throw new LatchkeyError('storage_conflict', 'the passkey is registered already', { cause: err });
      throw err;
    }
  }

  async listPasskeys(sub: string): Promise<PasskeyRecord[]> {
    const rows = await this.db.all<{
      credential_id: string;
      sub: string;
      public_key: string;
      counter: number | string;
      transports: string;
      created_at: number | string;
      last_used_at: number | string | null;
    }>(SQL.listPasskeys, [sub]);
    return rows.map((r) => ({
      credentialId: r.credential_id,
      sub: r.sub,
      publicKey: r.public_key,
      counter: Number(r.counter),
      transports: JSON.parse(r.transports) as string[],
      createdAt: Number(r.created_at),
      lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
    }));
  }

  async usePasskey(credentialId: string, counter: number, now: number): Promise<void> {
    await this.db.run(SQL.usePasskey, [counter, now, credentialId]);
  }

  async removePasskeys(sub: string): Promise<void> {
    await this.db.run(SQL.removePasskeys, [sub]);
  }

  // Login failures

  async recordLoginFailure(keys: readonly string[], now: number, windowMs: number): Promise<number[]> {
    const counts: number[] = [];
    for (const key of keys) {
      const row = await this.db.get<{ failures: number | string }>(SQL.recordLoginFailure, [key, now, now - windowMs]);
      counts.push(Number(row?.failures ?? 1));
    }
    return counts;
  }

  async loginFailures(keys: readonly string[]): Promise<Map<string, { failures: number; lastFailureAt: number }>> {
    const found = new Map<string, { failures: number; lastFailureAt: number }>();
    if (keys.length === 0) return found;
    const rows = await this.db.all<{ key: string; failures: number | string; last_failure_at: number | string }>(
      SQL.loginFailures(keys.length),
      keys,
    );
    for (const r of rows) found.set(r.key, { failures: Number(r.failures), lastFailureAt: Number(r.last_failure_at) });
    return found;
  }

  async clearLoginFailures(keys: readonly string[]): Promise<void> {
    if (keys.length > 0) await this.db.run(SQL.clearLoginFailures(keys.length), keys);
  }

  async clearLoginFailuresOf(key: string): Promise<void> {
    await this.db.run(SQL.clearLoginFailuresOf, [key, key.length + 1, `${key} `]);
  }

  purgeLoginFailures(before: number): Promise<number> {
    return this.db.run(SQL.purgeLoginFailures, [before]);
  }

  // Authorization codes

  async saveAuthorizationCode(c: AuthorizationCodeRecord, audit?: WithAudit): Promise<void> {
    await this.change((tx) => tx.run(SQL.insertCode, codeParams(c)), audit);
  }

  async useAuthorizationCode(
    codeHash: string,
    now: number,
  ): Promise<
    { code: AuthorizationCodeRecord; first: boolean; jti: string | null; familyId: string | null } | undefined
  > {
    const fresh = await this.db.get<CodeRow>(SQL.useCode, [now, codeHash]);
    if (fresh) return { code: codeFromRow(fresh), first: true, jti: null, familyId: null };
    const used = await this.db.get<CodeRow>(SQL.usedCode, [codeHash]);
    return used && { code: codeFromRow(used), first: false, jti: used.jti ?? null, familyId: used.family_id ?? null };
  }

  async setAuthorizationCodeJti(codeHash: string, jti: string, familyId: string | null): Promise<void> {
    await this.db.run(SQL.setCodeJti, [jti, familyId, codeHash]);
  }

  async sessionCodeTokens(sid: string): Promise<string[]> {
    return (await this.db.all<{ jti: string }>(SQL.sessionCodeJtis, [sid])).map((r) => r.jti);
  }

  async clientCodeTokens(sub: string, clientId: string): Promise<string[]> {
    return (await this.db.all<{ jti: string }>(SQL.clientCodeJtis, [sub, clientId])).map((r) => r.jti);
  }

  // Refresh tokens

  async createRefreshFamily(f: RefreshFamilyRecord, first: RefreshTokenRecord, audit?: WithAudit): Promise<void> {
    await this.change(async (tx) => {
      await tx.run(SQL.insertFamily, familyParams(f));
      await tx.run(SQL.insertRefresh, refreshParams(first));
    }, audit);
  }

  async useRefreshToken(
    tokenHash: string,
    now: number,
  ): Promise<{ token: RefreshTokenRecord; family: RefreshFamilyRecord; first: boolean } | undefined> {
    const fresh = await this.db.get<RefreshRow>(SQL.useRefresh, [now, tokenHash]);
    const row = fresh ?? (await this.db.get<RefreshRow>(SQL.getRefresh, [tokenHash]));
    if (!row) return undefined;
    const family = await this.db.get<FamilyRow>(SQL.getFamily, [row.family_id]);
    if (!family) return undefined;
    return { token: refreshFromRow(row), family: familyFromRow(family), first: fresh !== undefined };
  }

  async addRefreshToken(t: RefreshTokenRecord): Promise<void> {
    await this.db.run(SQL.insertRefresh, refreshParams(t));
  }

  async liveRefreshFamilyTokens(familyId: string, now: number): Promise<{ jti: string; expiresAt: number }[]> {
    const rows = await this.db.all<{ jti: string; jti_expires_at: number | string }>(SQL.familyJtis, [familyId, now]);
    return rows.map((r) => ({ jti: r.jti, expiresAt: Number(r.jti_expires_at) }));
  }

  revokeRefreshFamily(familyId: string, now: number, reason: string, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(SQL.revokeFamily, [now, reason, familyId], audit);
  }

  async getRefreshToken(
    tokenHash: string,
  ): Promise<{ token: RefreshTokenRecord; family: RefreshFamilyRecord } | undefined> {
    const row = await this.db.get<RefreshRow>(SQL.getRefresh, [tokenHash]);
    const family = row && (await this.getRefreshFamily(row.family_id));
    return row && family ? { token: refreshFromRow(row), family } : undefined;
  }

  async getRefreshFamily(familyId: string): Promise<RefreshFamilyRecord | undefined> {
    const row = await this.db.get<FamilyRow>(SQL.getFamily, [familyId]);
    return row && familyFromRow(row);
  }

  async listRefreshFamilies(sub: string): Promise<RefreshFamilyRecord[]> {
    return (await this.db.all<FamilyRow>(SQL.familiesOf, [sub])).map(familyFromRow);
  }

  // Sessions

  async createSession(cookieHash: string, x: SessionRecord): Promise<void> {
    await this.db.run(SQL.insertSession, [cookieHash, x.sid, x.sub, x.authTime, x.expiresAt]);
  }

  async getSessionByCookie(cookieHash: string): Promise<SessionRecord | undefined> {
    const row = await this.db.get<SessionRow>(SQL.sessionByCookie, [cookieHash]);
    return row && sessionFromRow(row);
  }

  async getSession(sid: string): Promise<SessionRecord | undefined> {
    const row = await this.db.get<SessionRow>(SQL.sessionById, [sid]);
    return row && sessionFromRow(row);
  }

  endSession(sid: string, now: number, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(SQL.endSession, [now, sid], audit);
  }

  async listSessionRefreshFamilies(sid: string): Promise<RefreshFamilyRecord[]> {
    return (await this.db.all<FamilyRow>(SQL.sessionFamilies, [sid])).map(familyFromRow);
  }

  // Consents

  async getConsent(sub: string, clientId: string): Promise<ConsentRecord | undefined> {
    const row = await this.db.get<ConsentRow>(SQL.getConsent, [sub, clientId]);
    return row && consentFromRow(row);
  }

  async saveConsent(c: ConsentRecord, audit?: WithAudit): Promise<void> {
    const params = [c.sub, c.clientId, c.scope, JSON.stringify(c.resource), c.grantedAt, c.updatedAt];
    await this.change((tx) => tx.run(SQL.saveConsent, params), audit);
  }

  async listConsents(sub: string): Promise<ConsentRecord[]> {
    return (await this.db.all<ConsentRow>(SQL.listConsents, [sub])).map(consentFromRow);
  }

  deleteConsent(sub: string, clientId: string, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(SQL.deleteConsent, [sub, clientId], audit);
  }

  // Pushed authorization requests

  async savePushedRequest(refHash: string, clientId: string, request: unknown, expiresAt: number): Promise<void> {
    await this.db.run(SQL.insertPushed, [refHash, clientId, JSON.stringify(request), expiresAt]);
  }

  async usePushedRequest(refHash: string, now: number): Promise<{ clientId: string; request: unknown } | undefined> {
    const row = await this.db.get<{ client_id: string; request: string }>(SQL.usePushed, [now, refHash, now]);
    return row && { clientId: row.client_id, request: JSON.parse(row.request) as unknown };
  }

  // Signing keys

  async insertKey(k: SigningKeyRecord, audit?: WithAudit): Promise<void> {
    try {
      await this.change((tx) => tx.run(SQL.insertKey, keyParams(k)), audit);
    } catch (err) {
      if (isConflict(err))
        throw new LatchkeyError('storage_conflict', `a ${k.state} key already exists`, { cause: err });
      throw err;
    }
  }

  async listPublishedKeys(): Promise<SigningKeyRecord[]> {
    return (await this.db.all<KeyRow>(SQL.listPublishedKeys)).map(keyFromRow);
  }

  async listKeys(): Promise<SigningKeyRecord[]> {
    return (await this.db.all<KeyRow>(SQL.listKeys)).map(keyFromRow);
  }

  async getCurrentKey(): Promise<SigningKeyRecord | undefined> {
    const row = await this.db.get<KeyRow>(SQL.currentKey);
    return row && keyFromRow(row);
  }

  async transitionKeys(transitions: KeyTransition[], audit?: WithAudit): Promise<boolean> {
    try {
      return await this.change(async (tx) => {
        for (const t of transitions) {
          const params = [t.to, t.to, t.at, t.to, t.at, t.removeAfter ?? null, t.kid, t.from];
          // Another replica moved this key first: none of the transitions apply.
          if ((await tx.run(SQL.transitionKey, params)) !== 1) throw new Rollback(false);
        }
        return true;
      }, audit);
    } catch (err) {
      // Another replica made a second current or next key first.
      if (isConflict(err)) return false;
      throw err;
    }
  }

  removeExpiredKeys(now: number, audit?: (kid: string) => AuditEvent[]): Promise<string[]> {
    return this.change(
      async (tx) => (await tx.all<{ kid: string }>(SQL.removeExpiredKeys, [now])).map((r) => r.kid),
      (kids) => (audit ? kids.flatMap(audit) : []),
      (kids) => kids.length > 0,
    );
  }

  // Leases and single use

  async tryLease(name: string, holder: string, expiresAtMs: number): Promise<boolean> {
    return (await this.db.run(SQL.tryLease, [name, holder, expiresAtMs, this.clock.now()])) === 1;
  }

  async useOnce(id: string, expiresAt: number): Promise<boolean> {
    return (await this.db.run(SQL.useOnce, [id, expiresAt, this.nowSeconds()])) === 1;
  }

  async purgeExpired(now: number): Promise<number> {
    // Used codes stay an hour past their expiry, so a late replay still revokes what the code gave.
    return (
      (await this.db.run(SQL.purgeUsedIds, [now])) +
      (await this.db.run(SQL.purgeFeed, [now])) +
      (await this.db.run(SQL.purgeCodes, [now - 3600])) +
      (await this.db.run(SQL.purgeFamilies, [now])) +
      (await this.db.run(SQL.purgePushed, [now])) +
      (await this.db.run(SQL.purgeSessions, [now])) +
      (await this.db.run(SQL.purgeConsoleSessions, [now])) +
      // A list's entries go once every token in it has expired (and verifiers' skew has passed).
      (await this.db.run(SQL.purgeTokenStatuses, [now])) +
      (await this.db.run(SQL.purgeStatusLists, [now]))
    );
  }

  // Shared Signals

  createSsfStream(stream: SsfStreamRecord, audit?: WithAudit): Promise<void> {
    return this.changeOne(SQL.insertSsfStream, ssfStreamParams(stream), audit).then(() => undefined);
  }

  async getSsfStream(streamId: string): Promise<SsfStreamRecord | undefined> {
    const r = await this.db.get<SsfStreamRow>(SQL.getSsfStream, [streamId]);
    return r ? ssfStreamFromRow(r) : undefined;
  }

  async listSsfStreams(clientId?: string): Promise<SsfStreamRecord[]> {
    const rows =
      clientId === undefined
        ? await this.db.all<SsfStreamRow>(SQL.listSsfStreams)
        : await this.db.all<SsfStreamRow>(SQL.listSsfStreamsOf, [clientId]);
    return rows.map(ssfStreamFromRow);
  }

  updateSsfStream(stream: SsfStreamRecord, audit?: WithAudit): Promise<boolean> {
    const [id, ...rest] = ssfStreamParams(stream);
    return this.changeOne(SQL.updateSsfStream, [...rest, id], audit);
  }

  deleteSsfStream(streamId: string, audit?: WithAudit): Promise<boolean> {
    return this.change(
      async (tx) => {
        await tx.run(SQL.deleteSsfSubjects, [streamId]);
        await tx.run(SQL.deleteSsfQueue, [streamId]);
        return (await tx.run(SQL.deleteSsfStream, [streamId])) === 1;
      },
      audit,
      (deleted) => deleted,
    );
  }

  async setSsfSubject(streamId: string, subject: string, included: boolean): Promise<void> {
    await this.db.run(SQL.setSsfSubject, [streamId, subject, included ? 1 : 0]);
  }

  async ssfSubjects(streamId: string): Promise<Map<string, boolean>> {
    const rows = await this.db.all<{ subject: string; included: number | string }>(SQL.ssfSubjects, [streamId]);
    return new Map(rows.map((r) => [r.subject, Number(r.included) === 1]));
  }

  async enqueueSets(
    sets: readonly Omit<QueuedSetRecord, 'seq' | 'attempts' | 'lastError'>[],
    cursor: { name: string; value: string },
  ): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const s of sets)
        await tx.run(SQL.enqueueSet, [s.streamId, s.jti, s.eventType, s.set, s.createdAt, s.nextAttemptAt]);
      await tx.run(SQL.upsertSetting, [cursor.name, cursor.value]);
    });
  }

  async queuedSets(streamId: string, limit: number): Promise<QueuedSetRecord[]> {
    return (await this.db.all<Parameters<typeof queuedSetFromRow>[0]>(SQL.queuedSets, [streamId, limit])).map(
      queuedSetFromRow,
    );
  }

  async countQueuedSets(streamId: string): Promise<number> {
    return Number((await this.db.get<{ n: number | string }>(SQL.countQueuedSets, [streamId]))?.n ?? 0);
  }

  async removeQueuedSets(streamId: string, jtis: readonly string[]): Promise<number> {
    let removed = 0;
    for (let at = 0; at < jtis.length; at += 200) {
      const chunk = jtis.slice(at, at + 200);
      removed += await this.db.run(SQL.removeQueuedSets(chunk.length), [streamId, ...chunk]);
    }
    return removed;
  }

  async deferQueuedSet(seq: number, attempts: number, nextAttemptAt: number, lastError: string): Promise<void> {
    await this.db.run(SQL.deferQueuedSet, [attempts, nextAttemptAt, lastError.slice(0, 500), seq]);
  }

  // Federated workload identity

  putFederationIssuer(i: FederationIssuerRecord, audit?: WithAudit): Promise<void> {
    const config = JSON.stringify({
      jwksUri: i.jwksUri,
      discovery: i.discovery,
      jwks: i.jwks,
      algorithms: i.algorithms,
      allowHttp: i.allowHttp,
      allowPrivateAddresses: i.allowPrivateAddresses,
      singleUse: i.singleUse,
    });
    return this.change(
      async (tx) =>
        void (await tx.run(SQL.putFederationIssuer, [i.name, i.kind, i.issuer, config, i.createdAt, i.updatedAt])),
      audit,
    );
  }

  deleteFederationIssuer(name: string, audit?: WithAudit): Promise<boolean> {
    return this.change(
      async (tx) => {
        await tx.run(SQL.deleteFederationRulesOf, [name]);
        return (await tx.run(SQL.deleteFederationIssuer, [name])) === 1;
      },
      audit,
      (deleted) => deleted,
    );
  }

  async listFederationIssuers(): Promise<FederationIssuerRecord[]> {
    const rows = await this.db.all<{
      name: string;
      kind: string;
      issuer: string;
      config: string;
      created_at: number | string;
      updated_at: number | string;
    }>(SQL.listFederationIssuers);
    return rows.map((r) => ({
      name: r.name,
      kind: r.kind as FederationIssuerRecord['kind'],
      issuer: r.issuer,
      ...(JSON.parse(r.config) as Omit<FederationIssuerRecord, 'name' | 'kind' | 'issuer' | 'createdAt' | 'updatedAt'>),
      createdAt: Number(r.created_at),
      updatedAt: Number(r.updated_at),
    }));
  }

  putFederationRule(r: FederationRuleRecord, audit?: WithAudit): Promise<void> {
    const config = JSON.stringify({ subject: r.subject, audience: r.audience, claims: r.claims });
    return this.change(
      async (tx) => void (await tx.run(SQL.putFederationRule, [r.name, r.issuer, r.clientId, config, r.createdAt])),
      audit,
    );
  }

  deleteFederationRule(name: string, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(SQL.deleteFederationRule, [name], audit);
  }

  async listFederationRules(): Promise<FederationRuleRecord[]> {
    const rows = await this.db.all<{
      name: string;
      issuer: string;
      client_id: string;
      config: string;
      created_at: number | string;
    }>(SQL.listFederationRules);
    return rows.map((r) => ({
      name: r.name,
      issuer: r.issuer,
      clientId: r.client_id,
      ...(JSON.parse(r.config) as Pick<FederationRuleRecord, 'subject' | 'audience' | 'claims'>),
      createdAt: Number(r.created_at),
    }));
  }

  // Token Status List

  async allocateStatusIndices(
    count: number,
    listSize: number,
    coverSeconds: number,
  ): Promise<{ listId: number; first: number }> {
    if (!Number.isSafeInteger(count) || count < 1 || count > listSize)
      throw new RangeError('a block of status indices must fit in one list');
    return this.db.transaction(async (tx) => {
      await tx.lock('status');
      const now = this.nowSeconds();
      const cur = await tx.get<{ list_id: number | string; next_idx: number | string; size: number | string }>(
        SQL.statusAllocation,
      );
      const expiresAt = now + coverSeconds;
      if (cur && Number(cur.next_idx) + count <= Number(cur.size)) {
        await tx.run(SQL.moveStatusAllocation, [Number(cur.list_id), Number(cur.next_idx) + count]);
        await tx.run(SQL.extendStatusList, [expiresAt, Number(cur.list_id), expiresAt]);
        return { listId: Number(cur.list_id), first: Number(cur.next_idx) };
      }
      const listId = cur ? Number(cur.list_id) + 1 : 1;
      await tx.run(SQL.insertStatusList, [listId, listSize, now, expiresAt]);
      await tx.run(cur ? SQL.moveStatusAllocation : SQL.startStatusAllocation, [listId, count]);
      return { listId, first: 0 };
    });
  }

  async getStatusList(listId: number): Promise<StatusListRecord | undefined> {
    const r = await this.db.get<{ list_id: number | string; size: number | string; created_at: number | string }>(
      SQL.getStatusList,
      [listId],
    );
    return r ? { listId: Number(r.list_id), size: Number(r.size), createdAt: Number(r.created_at) } : undefined;
  }

  async revokedTokenJtis(issuer: string): Promise<string[]> {
    return (await this.db.all<{ ref: string }>(SQL.revokedTokenJtis, [issuer])).map((r) => r.ref);
  }

  async tokenStatusesAt(listId: number, idxs: readonly number[]): Promise<{ idx: number; jti: string }[]> {
    const out: { idx: number; jti: string }[] = [];
    for (let at = 0; at < idxs.length; at += 200) {
      const chunk = idxs.slice(at, at + 200);
      const rows = await this.db.all<{ idx: number | string; jti: string }>(SQL.tokenStatusesAt(chunk.length), [
        listId,
        ...chunk,
      ]);
      for (const r of rows) out.push({ idx: Number(r.idx), jti: r.jti });
    }
    return out;
  }

  async liveStatusLists(): Promise<number[]> {
    return (await this.db.all<{ list_id: number | string }>(SQL.liveStatusLists)).map((r) => Number(r.list_id));
  }

  async revokedStatusIndices(issuer: string, listId: number): Promise<number[]> {
    const params = (['token', 'client', 'subject', 'subject', 'key'] as const).flatMap((kind) => [
      kind,
      listId,
      issuer,
    ]);
    return (await this.db.all<{ idx: number | string }>(SQL.revokedStatusIndices, params)).map((r) => Number(r.idx));
  }

  // Feed

  appendFeedEvent(e: Omit<FeedEventRecord, 'seq'>, audit?: WithAudit): Promise<FeedEventRecord> {
    return this.change(async (tx) => {
      // Appends are serialized so commit order equals seq order: a reader that has seen seq N can
      // never later find a smaller seq committed behind it. (Feed lock first, then the audit lock.)
      await tx.lock('feed');
      const row = await tx.get<{ seq: number | string }>(SQL.appendFeed, feedParams(e));
      await tx.notify('feed');
      return { ...e, seq: Number(row?.seq) };
    }, audit);
  }

  async listFeedEvents(
    stream: FeedStream | 'all',
    after: number,
    limit: number,
    now: number,
  ): Promise<FeedEventRecord[]> {
    const rows =
      stream === 'all'
        ? await this.db.all<FeedRow>(SQL.feedAll, [after, now, limit])
        : await this.db.all<FeedRow>(SQL.feedStream, [stream, after, now, limit]);
    return rows.map(feedFromRow);
  }

  async latestFeedSeq(): Promise<number> {
    return Number((await this.db.get<{ seq: number | string }>(SQL.latestFeedSeq))?.seq ?? 0);
  }

  onFeedAppended(listener: () => void): () => void {
    return this.db.listen('feed', listener);
  }

  feedNotificationsConnected(): boolean {
    return this.db.notificationsConnected();
  }

  async isTokenRevoked(issuer: string, jti: string): Promise<boolean> {
    return (await this.db.get(SQL.isTokenRevoked, [issuer, jti])) !== undefined;
  }

  async revocationNotBefore(issuer: string, kind: 'client' | 'subject', ref: string): Promise<number | undefined> {
    const row = await this.db.get<{ nb: number | string | null }>(SQL.revocationNotBefore, [
      kind,
      issuer,
      ref,
      this.nowSeconds(),
    ]);
    return row?.nb === null || row?.nb === undefined ? undefined : Number(row.nb);
  }

  // Audit

  async appendAuditEvents(events: AuditEvent[], tokenStatuses: readonly TokenStatusRecord[] = []): Promise<void> {
    if (events.length === 0 && tokenStatuses.length === 0) return;
    this.announceAppended(
      await this.db.transaction(async (tx) => {
        let at = 0;
        for (const size of auditChunks(tokenStatuses.length)) {
          await tx.run(SQL.insertTokenStatuses(size), tokenStatuses.slice(at, at + size).flatMap(tokenStatusParams));
          at += size;
        }
        return events.length > 0 ? this.appendAuditIn(tx, events) : [];
      }),
    );
  }

  async queryAuditEvents(filter: AuditFilter): Promise<AuditRecord[]> {
    const where = auditWhere(filter);
    const rows = await this.db.all<AuditRow>(SQL.queryAudit(where.sql, filter.newest === true), [
      ...where.values,
      filter.limit,
    ]);
    if (filter.newest) rows.reverse();
    return rows.map(auditRecordFromRow);
  }

  async auditHead(): Promise<{ seq: number; hash: string } | undefined> {
    const h = await this.db.get<{ seq: number | string; hash: string | null }>(SQL.auditHead);
    return h && h.hash !== null ? { seq: Number(h.seq), hash: h.hash } : undefined;
  }

  async lastAuditSeqBefore(time: string): Promise<number | undefined> {
    const r = await this.db.get<{ seq: number | string | null }>(SQL.lastAuditSeqBefore, [time]);
    return r?.seq === null || r?.seq === undefined ? undefined : Number(r.seq);
  }

  async addAuditCheckpoint(c: AuditCheckpoint): Promise<void> {
    await this.db.run(SQL.addCheckpoint, [c.seq, c.hash, c.time, c.kid, c.signature]);
  }

  async listAuditCheckpoints(): Promise<AuditCheckpoint[]> {
    return (await this.db.all<AuditCheckpoint>(SQL.listCheckpoints)).map((c) => ({ ...c, seq: Number(c.seq) }));
  }

  pruneAuditEvents(throughSeq: number): Promise<number> {
    return this.db.transaction(async (tx) => {
      await tx.run(SQL.pruneCheckpoints, [throughSeq]);
      return tx.run(SQL.pruneAudit, [throughSeq]);
    });
  }

  async auditAtOrAfter(seq: number): Promise<{ seq: number; time: string } | undefined> {
    const r = await this.db.get<{ seq: number | string; time: string }>(SQL.auditAtOrAfter, [seq]);
    return r && { seq: Number(r.seq), time: r.time };
  }

  async auditCounts(f: {
    types: readonly string[];
    afterSeq: number;
    throughSeq: number;
    bucketChars: number;
  }): Promise<AuditCount[]> {
    if (f.types.length === 0) return [];
    const rows = await this.db.all<Omit<AuditCount, 'n'> & { n: number | string }>(
      SQL.auditCounts(f.bucketChars, f.types.length),
      [...f.types, f.afterSeq, f.throughSeq],
    );
    return rows.map((r) => ({ ...r, n: Number(r.n) }));
  }

  // Alerts

  insertAlert(a: NewAlert, audit?: (alert: AlertRecord) => AuditEvent[]): Promise<AlertRecord> {
    return this.change(
      async (tx) => ({
        ...a,
        id: Number((await tx.get<{ id: number | string }>(SQL.insertAlert, alertParams(a)))?.id),
        acknowledgedAt: null,
        acknowledgedBy: null,
      }),
      (alert) => audit?.(alert) ?? [],
    );
  }

  async listAlerts(f: {
    after?: number;
    detector?: string;
    state?: 'open' | 'acknowledged';
    limit: number;
  }): Promise<AlertRecord[]> {
    const params = f.detector ? [f.after ?? 0, f.detector, f.limit] : [f.after ?? 0, f.limit];
    return (await this.db.all<AlertRow>(SQL.listAlerts(f.detector !== undefined, f.state), params)).map(alertFromRow);
  }

  async getAlert(id: number): Promise<AlertRecord | undefined> {
    const row = await this.db.get<AlertRow>(SQL.getAlert, [id]);
    return row && alertFromRow(row);
  }

  acknowledgeAlert(id: number, by: string, time: string, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(SQL.acknowledgeAlert, [time, by, id], audit);
  }

  // Console sessions

  async createConsoleSession(cookieHash: string, x: ConsoleSessionRecord, audit?: WithAudit): Promise<void> {
    await this.change(
      (tx) => tx.run(SQL.insertConsoleSession, [cookieHash, x.sid, x.actor, x.sub, x.createdAt, x.expiresAt]),
      audit,
    );
  }

  async getConsoleSession(cookieHash: string): Promise<ConsoleSessionRecord | undefined> {
    const row = await this.db.get<ConsoleSessionRow>(SQL.consoleSessionByCookie, [cookieHash]);
    return row && consoleSessionFromRow(row);
  }

  endConsoleSession(sid: string, now: number, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(SQL.endConsoleSession, [now, sid], audit);
  }

  // Policy versions

  async insertPolicyVersion(p: PolicyVersionRecord, audit?: WithAudit): Promise<boolean> {
    try {
      await this.change((tx) => tx.run(SQL.insertPolicyVersion, policyParams(p)), audit);
      return true;
    } catch (err) {
      // Another publish took this version first.
      if (isConflict(err)) return false;
      throw err;
    }
  }

  async getPolicyVersion(version?: number): Promise<PolicyVersionRecord | undefined> {
    const row =
      version === undefined
        ? await this.db.get<PolicyRow>(SQL.newestPolicyVersion)
        : await this.db.get<PolicyRow>(SQL.policyVersion, [version]);
    return row && policyFromRow(row);
  }

  async listPolicyVersions(limit: number): Promise<PolicyVersionSummary[]> {
    return (await this.db.all<PolicyRow>(SQL.listPolicyVersions, [limit])).map(policySummaryFromRow);
  }

  // Settings

  async getSetting(name: string): Promise<string | undefined> {
    return (await this.db.get<{ value: string }>(SQL.getSetting, [name]))?.value;
  }

  async setSettingIfAbsent(name: string, value: string): Promise<string> {
    await this.db.run(SQL.insertSettingIfAbsent, [name, value]);
    return (await this.getSetting(name)) as string;
  }

  async setSetting(name: string, value: string): Promise<void> {
    await this.db.run(SQL.upsertSetting, [name, value]);
  }

  replaceSetting(name: string, expected: string, value: string, audit?: WithAudit): Promise<boolean> {
    return this.changeOne(SQL.replaceSetting, [value, name, expected], audit);
  }
}
