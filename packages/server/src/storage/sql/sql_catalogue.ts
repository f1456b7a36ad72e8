import {
  ALERT_COLUMNS,
  ALERT_SELECT,
  AUDIT_COLUMNS,
  CLIENT_COLUMNS,
  CLIENT_SELECT,
  FEED_COLUMNS,
  KEY_COLUMNS,
  POLICY_COLUMNS,
  POLICY_SUMMARY_COLUMNS,
  USER_CHANGE_COLUMNS,
  USER_COLUMNS,
  CODE_COLUMNS,
  FAMILY_COLUMNS,
  REFRESH_COLUMNS,
  TOKEN_STATUS_COLUMNS,
  SSF_STREAM_COLUMNS,
  QUEUED_SET_COLUMNS,
} from '../rows.ts';

/** `?, ?, ...` for `n` parameters. */
const marks = (n: number): string => Array(n).fill('?').join(', ');

/** Columns of a chained audit row: its place in the chain, then the event (rows.ts `chainRows`). */
const AUDIT_ROW = `seq, prev_hash, hash, ${AUDIT_COLUMNS}`;
/** What an insert writes: the chained row, and the transaction id lifted out of its detail (an index, outside the hash). */
const AUDIT_INSERT = `${AUDIT_ROW}, txn`;
const AUDIT_INSERT_WIDTH = AUDIT_INSERT.split(',').length;

/**
 * Every SQL statement the IdP runs, written once with `?` placeholders; the drivers render them
 * (PostgreSQL numbers them `$1…`). Both databases accept this SQL as is: `ON CONFLICT … DO UPDATE
 * … WHERE`, `RETURNING`, partial indexes. Statements that vary with their input are functions.
 */
export const SQL = {
  createMigrationsTable:
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  appliedMigrations: 'SELECT version FROM schema_migrations',
  recordMigration: 'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
  ping: 'SELECT 1 AS ok',

  insertClient: `INSERT INTO clients (${CLIENT_COLUMNS}) VALUES (${marks(7)})`,
  getClient: `SELECT ${CLIENT_SELECT} FROM clients WHERE client_id = ?`,
  listClients: `SELECT ${CLIENT_SELECT} FROM clients ORDER BY created_at, client_id`,
  updateClient:
    'UPDATE clients SET metadata = ?, secret_hash = ?, registration_token_hash = ?, updated_at = ?, disabled = ? WHERE client_id = ?',
  lockClient: 'UPDATE clients SET locked_until = ? WHERE client_id = ?',
  deleteClient: 'DELETE FROM clients WHERE client_id = ?',

  insertUser: `INSERT INTO users (${USER_COLUMNS}) VALUES (${marks(USER_COLUMNS.split(',').length)})`,
  getUser: `SELECT ${USER_COLUMNS} FROM users WHERE sub = ?`,
  getUserByUsername: `SELECT ${USER_COLUMNS} FROM users WHERE username_key = ?`,
  listUsers: `SELECT ${USER_COLUMNS} FROM users WHERE username_key > ? ORDER BY username_key LIMIT ?`,
  updateUser: `UPDATE users SET ${USER_CHANGE_COLUMNS.split(', ')
    .map((c) => `${c} = ?`)
    .join(', ')} WHERE sub = ?`,
  /** Parameters: step, sub, step. */
  useTotpStep: 'UPDATE users SET totp_last_step = ? WHERE sub = ? AND (totp_last_step IS NULL OR totp_last_step < ?)',
  clearRecoveryCodes: 'DELETE FROM recovery_codes WHERE sub = ?',
  insertRecoveryCode: 'INSERT INTO recovery_codes (sub, code_hash) VALUES (?, ?)',
  /** Parameters: now, sub, hash. */
  useRecoveryCode: 'UPDATE recovery_codes SET used_at = ? WHERE sub = ? AND code_hash = ? AND used_at IS NULL',
  recoveryCodesLeft: 'SELECT COUNT(*) AS n FROM recovery_codes WHERE sub = ? AND used_at IS NULL',
  insertPasskey:
    'INSERT INTO passkeys (credential_id, sub, public_key, counter, transports, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  listPasskeys:
    'SELECT credential_id, sub, public_key, counter, transports, created_at, last_used_at FROM passkeys WHERE sub = ? ORDER BY created_at',
  usePasskey: 'UPDATE passkeys SET counter = ?, last_used_at = ? WHERE credential_id = ?',
  removePasskeys: 'DELETE FROM passkeys WHERE sub = ?',
  deleteUser: 'DELETE FROM users WHERE sub = ?',
  /** Parameters: key, now, now - window. One failure more, or the first of a new window. */
  recordLoginFailure: `INSERT INTO login_failures (key, failures, last_failure_at) VALUES (?, 1, ?)
    ON CONFLICT (key) DO UPDATE SET
      failures = CASE WHEN login_failures.last_failure_at <= ? THEN 1 ELSE login_failures.failures + 1 END,
      last_failure_at = excluded.last_failure_at
    RETURNING failures`,
  loginFailures: (keys: number): string =>
    `SELECT key, failures, last_failure_at FROM login_failures WHERE key IN (${marks(keys)})`,
  clearLoginFailures: (keys: number): string => `DELETE FROM login_failures WHERE key IN (${marks(keys)})`,
  /** Parameters: key, length of key + 1, key + ' '. */
  clearLoginFailuresOf: 'DELETE FROM login_failures WHERE key = ? OR substr(key, 1, ?) = ?',
  purgeLoginFailures: 'DELETE FROM login_failures WHERE last_failure_at < ?',

  insertCode: `INSERT INTO authorization_codes (${CODE_COLUMNS}) VALUES (${marks(11)})`,
  /** Parameters: now, code hash. Only a code not used before. */
  useCode: `UPDATE authorization_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL RETURNING ${CODE_COLUMNS}`,
  usedCode: `SELECT ${CODE_COLUMNS}, used_at, jti, family_id FROM authorization_codes WHERE code_hash = ?`,
  setCodeJti: 'UPDATE authorization_codes SET jti = ?, family_id = ? WHERE code_hash = ?',
  purgeCodes: 'DELETE FROM authorization_codes WHERE expires_at < ?',
  sessionCodeJtis: 'SELECT jti FROM authorization_codes WHERE sid = ? AND jti IS NOT NULL',
  clientCodeJtis: 'SELECT jti FROM authorization_codes WHERE sub = ? AND client_id = ? AND jti IS NOT NULL',

  insertFamily: `INSERT INTO refresh_families (${FAMILY_COLUMNS}) VALUES (${marks(11)})`,
  insertRefresh: `INSERT INTO refresh_tokens (${REFRESH_COLUMNS}) VALUES (${marks(7)})`,
  /** Parameters: now, hash. Only a token not used before. */
  useRefresh: `UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL RETURNING ${REFRESH_COLUMNS}`,
  getRefresh: `SELECT ${REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = ?`,
  getFamily: `SELECT ${FAMILY_COLUMNS} FROM refresh_families WHERE family_id = ?`,
  /** Parameters: now, reason, family. Only a family not revoked before. */
  revokeFamily:
    'UPDATE refresh_families SET revoked_at = ?, revoked_reason = ? WHERE family_id = ? AND revoked_at IS NULL',
  /** Parameters: family, now. */
  familyJtis: 'SELECT jti, jti_expires_at FROM refresh_tokens WHERE family_id = ? AND jti_expires_at > ?',
  familiesOf: `SELECT ${FAMILY_COLUMNS} FROM refresh_families WHERE sub = ? ORDER BY created_at`,
  sessionFamilies: `SELECT ${FAMILY_COLUMNS} FROM refresh_families WHERE sid = ? ORDER BY created_at`,
  insertSession: 'INSERT INTO user_sessions (sid_hash, sid, sub, auth_time, expires_at) VALUES (?, ?, ?, ?, ?)',
  sessionByCookie: 'SELECT sid, sub, auth_time, expires_at, ended_at FROM user_sessions WHERE sid_hash = ?',
  sessionById: 'SELECT sid, sub, auth_time, expires_at, ended_at FROM user_sessions WHERE sid = ?',
  /** Parameters: now, sid. Only a session not ended before. */
  endSession: 'UPDATE user_sessions SET ended_at = ? WHERE sid = ? AND ended_at IS NULL',
  purgeSessions: 'DELETE FROM user_sessions WHERE expires_at < ?',
  purgeFamilies: 'DELETE FROM refresh_families WHERE expires_at < ?',

  getConsent:
    'SELECT sub, client_id, scope, resource, granted_at, updated_at FROM user_consents WHERE sub = ? AND client_id = ?',
  /** Parameters: sub, client, scope, resource, granted, updated. A new consent keeps the first grant's time. */
  saveConsent: `INSERT INTO user_consents (sub, client_id, scope, resource, granted_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (sub, client_id) DO UPDATE SET scope = excluded.scope, resource = excluded.resource, updated_at = excluded.updated_at`,
  listConsents:
    'SELECT sub, client_id, scope, resource, granted_at, updated_at FROM user_consents WHERE sub = ? ORDER BY client_id',
  deleteConsent: 'DELETE FROM user_consents WHERE sub = ? AND client_id = ?',

  insertPushed: 'INSERT INTO pushed_requests (ref_hash, client_id, request, expires_at) VALUES (?, ?, ?, ?)',
  /** Parameters: now, hash, now. Only a request not used before and not expired. */
  usePushed:
    'UPDATE pushed_requests SET used_at = ? WHERE ref_hash = ? AND used_at IS NULL AND expires_at >= ? RETURNING client_id, request',
  purgePushed: 'DELETE FROM pushed_requests WHERE expires_at < ?',

  insertKey: `INSERT INTO signing_keys (${KEY_COLUMNS}) VALUES (${marks(9)})`,
  listKeys: `SELECT ${KEY_COLUMNS} FROM signing_keys ORDER BY created_at DESC, kid`,
  listPublishedKeys: `SELECT ${KEY_COLUMNS} FROM signing_keys WHERE state <> 'revoked' ORDER BY created_at DESC, kid`,
  currentKey: `SELECT ${KEY_COLUMNS} FROM signing_keys WHERE state = 'current'`,
  /** Parameters: to, to, at, to, at, removeAfter, kid, from. */
  transitionKey: `UPDATE signing_keys SET state = ?,
      activated_at = CASE WHEN ? = 'current' THEN ? ELSE activated_at END,
      retired_at = CASE WHEN ? IN ('retired', 'revoked') THEN ? ELSE retired_at END,
      remove_after = COALESCE(?, remove_after)
    WHERE kid = ? AND state = ?`,
  removeExpiredKeys: `DELETE FROM signing_keys
    WHERE state IN ('retired', 'revoked') AND remove_after IS NOT NULL AND remove_after <= ? RETURNING kid`,

  /** Parameters: name, holder, expiresAtMs, nowMs. Taken when free, expired, or already ours. */
  tryLease: `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
    WHERE leases.holder = excluded.holder OR leases.expires_at < ?`,
  /** Parameters: id, expiresAt, now. An expired entry is taken over; a live one makes this a no-op. */
  useOnce: `INSERT INTO used_jtis (id, expires_at) VALUES (?, ?)
    ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at WHERE used_jtis.expires_at < ?`,
  purgeUsedIds: 'DELETE FROM used_jtis WHERE expires_at < ?',

  appendFeed: `INSERT INTO feed_events (${FEED_COLUMNS}) VALUES (${marks(8)}) RETURNING seq`,
  feedAll: `SELECT seq, ${FEED_COLUMNS} FROM feed_events WHERE seq > ? AND expires_at > ? ORDER BY seq LIMIT ?`,
  feedStream: `SELECT seq, ${FEED_COLUMNS} FROM feed_events
    WHERE stream = ? AND seq > ? AND expires_at > ? ORDER BY seq LIMIT ?`,
  latestFeedSeq: 'SELECT COALESCE(MAX(seq), 0) AS seq FROM feed_events',
  purgeFeed: 'DELETE FROM feed_events WHERE expires_at < ?',

  insertSsfStream: `INSERT INTO ssf_streams (${SSF_STREAM_COLUMNS}) VALUES (${marks(SSF_STREAM_COLUMNS.split(',').length)})`,
  getSsfStream: `SELECT ${SSF_STREAM_COLUMNS} FROM ssf_streams WHERE stream_id = ?`,
  listSsfStreams: `SELECT ${SSF_STREAM_COLUMNS} FROM ssf_streams ORDER BY created_at, stream_id`,
  listSsfStreamsOf: `SELECT ${SSF_STREAM_COLUMNS} FROM ssf_streams WHERE client_id = ? ORDER BY created_at, stream_id`,
  updateSsfStream: `UPDATE ssf_streams SET ${SSF_STREAM_COLUMNS.split(', ')
    .slice(1)
    .map((c) => `${c} = ?`)
    .join(', ')} WHERE stream_id = ?`,
  deleteSsfStream: 'DELETE FROM ssf_streams WHERE stream_id = ?',
  deleteSsfSubjects: 'DELETE FROM ssf_subjects WHERE stream_id = ?',
  deleteSsfQueue: 'DELETE FROM ssf_queue WHERE stream_id = ?',
  /** Parameters: stream_id, subject, included. */
  setSsfSubject: `INSERT INTO ssf_subjects (stream_id, subject, included) VALUES (?, ?, ?)
    ON CONFLICT (stream_id, subject) DO UPDATE SET included = excluded.included`,
  ssfSubjects: 'SELECT subject, included FROM ssf_subjects WHERE stream_id = ?',
  /** Parameters: stream_id, jti, event_type, set_jwt, created_at, next_attempt_at; an SET queued twice stays once. */
  enqueueSet: `INSERT INTO ssf_queue (stream_id, jti, event_type, set_jwt, created_at, next_attempt_at)
    VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (stream_id, jti) DO NOTHING`,
  queuedSets: `SELECT ${QUEUED_SET_COLUMNS} FROM ssf_queue WHERE stream_id = ? ORDER BY seq LIMIT ?`,
  countQueuedSets: 'SELECT COUNT(*) AS n FROM ssf_queue WHERE stream_id = ?',
  removeQueuedSets: (n: number): string => `DELETE FROM ssf_queue WHERE stream_id = ? AND jti IN (${marks(n)})`,
  /** Parameters: attempts, next_attempt_at, last_error, seq. */
  deferQueuedSet: 'UPDATE ssf_queue SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE seq = ?',

  /** Parameters: name, kind, issuer, config, created_at, updated_at. */
  putFederationIssuer: `INSERT INTO federation_issuers (name, kind, issuer, config, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, issuer = excluded.issuer, config = excluded.config, updated_at = excluded.updated_at`,
  deleteFederationIssuer: 'DELETE FROM federation_issuers WHERE name = ?',
  deleteFederationRulesOf: 'DELETE FROM federation_rules WHERE issuer = ?',
  listFederationIssuers:
    'SELECT name, kind, issuer, config, created_at, updated_at FROM federation_issuers ORDER BY name',
  /** Parameters: name, issuer, client_id, config, created_at. */
  putFederationRule: `INSERT INTO federation_rules (name, issuer, client_id, config, created_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id, config = excluded.config`,
  deleteFederationRule: 'DELETE FROM federation_rules WHERE name = ?',
  listFederationRules: 'SELECT name, issuer, client_id, config, created_at FROM federation_rules ORDER BY name',

  statusAllocation:
    'SELECT a.list_id, a.next_idx, l.size FROM status_allocation a JOIN status_lists l ON l.list_id = a.list_id',
  /** Parameters: list_id, size, created_at, expires_at. */
  insertStatusList: 'INSERT INTO status_lists (list_id, size, created_at, expires_at) VALUES (?, ?, ?, ?)',
  /** Parameters: expires_at, list_id: a block reserved now pushes back when the list's last token expires. */
  extendStatusList: 'UPDATE status_lists SET expires_at = ? WHERE list_id = ? AND expires_at < ?',
  /** Parameters: list_id, next_idx. */
  startStatusAllocation: 'INSERT INTO status_allocation (id, list_id, next_idx) VALUES (1, ?, ?)',
  /** Parameters: list_id, next_idx. */
  moveStatusAllocation: 'UPDATE status_allocation SET list_id = ?, next_idx = ? WHERE id = 1',
  getStatusList: 'SELECT list_id, size, created_at FROM status_lists WHERE list_id = ?',
  liveStatusLists: 'SELECT list_id FROM status_lists ORDER BY list_id',
  insertTokenStatuses: (rows: number): string =>
    `INSERT INTO token_statuses (${TOKEN_STATUS_COLUMNS}) VALUES ${Array(rows)
      .fill(`(${marks(TOKEN_STATUS_COLUMNS.split(',').length)})`)
      .join(', ')}`,
  /**
   * The indices of a list whose tokens a revocation entry covers (the entries are few: each part
   * starts from them): by the jti its exchange chain started from, a client's tokens and a
   * subject's (a user's, or a service's: sub = client_id) issued up to the not-before time, and a
   * revoked key's. (A token revoked by its own jti is found from the jti: `tokenStatusesAt`.)
   * Parameters: (kind, list_id, iss) × 5.
   */
  revokedStatusIndices: [
    's.origin_jti = f.ref AND f.kind = ?',
    's.client_id = f.ref AND s.iat <= f.not_before AND f.kind = ?',
    's.sub = f.ref AND s.sub <> s.client_id AND s.iat <= f.not_before AND f.kind = ?',
    's.client_id = f.ref AND s.sub = s.client_id AND s.iat <= f.not_before AND f.kind = ?',
    's.kid = f.ref AND f.kind = ?',
  ]
    .map(
      // The (few) revocation entries first (CROSS JOIN fixes SQLite's order), then each one's
      // tokens by their own index; `+s.list_id` keeps SQLite from scanning the whole list instead
      // (the key part has no index of its own: a revoked key's tokens are found by reading the list).
      (on, i, all) =>
        `SELECT s.idx FROM feed_events f CROSS JOIN token_statuses s WHERE ${on} AND ${i < all.length - 1 ? '+' : ''}s.list_id = ? AND f.stream = 'revocations' AND f.iss = ?`,
    )
    .join(' UNION '),
  /** Lists every token of which has expired (and then their entries), but the one allocated from. */
  revokedTokenJtis: "SELECT ref FROM feed_events WHERE stream = 'revocations' AND kind = 'token' AND iss = ?",
  tokenStatusesAt: (n: number): string =>
    `SELECT idx, jti FROM token_statuses WHERE list_id = ? AND idx IN (${marks(n)})`,
  purgeTokenStatuses:
    'DELETE FROM token_statuses WHERE list_id IN (SELECT list_id FROM status_lists WHERE expires_at < ?)',
  purgeStatusLists: `DELETE FROM status_lists WHERE expires_at < ?
    AND list_id < COALESCE((SELECT list_id FROM status_allocation), 0)`,
  isTokenRevoked: `SELECT 1 AS revoked FROM feed_events
    WHERE stream = 'revocations' AND kind = 'token' AND iss = ? AND ref = ? LIMIT 1`,
  revocationNotBefore: `SELECT MAX(not_before) AS nb FROM feed_events
    WHERE stream = 'revocations' AND kind = ? AND iss = ? AND ref = ? AND expires_at > ?`,

  auditHead: 'SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1',
  /** A multi-row insert of `rows` chained audit rows (`chainRows`). */
  insertAuditRows: (rows: number): string =>
    `INSERT INTO audit_events (${AUDIT_INSERT}) VALUES ${Array(rows)
      .fill(`(${marks(AUDIT_INSERT_WIDTH)})`)
      .join(', ')}`,
  /** `where` from rows.ts `auditWhere`; the last parameter is the limit. */
  queryAudit: (where: string, newest: boolean): string =>
    `SELECT ${AUDIT_ROW} FROM audit_events WHERE ${where} ORDER BY seq ${newest ? 'DESC' : 'ASC'} LIMIT ?`,
  lastAuditSeqBefore: 'SELECT MAX(seq) AS seq FROM audit_events WHERE time < ?',
  auditAtOrAfter: 'SELECT seq, time FROM audit_events WHERE seq >= ? ORDER BY seq LIMIT 1',
  /** Events per time bucket (the first `chars` characters of their RFC 3339 time), type, outcome and client. */
  auditCounts: (chars: number, types: number): string =>
    `SELECT substr(time, 1, ${Math.trunc(chars)}) AS bucket, type, outcome, client_id, COUNT(*) AS n FROM audit_events
    WHERE type IN (${marks(types)}) AND seq > ? AND seq <= ?
    GROUP BY substr(time, 1, ${Math.trunc(chars)}), type, outcome, client_id`,
  pruneAudit: 'DELETE FROM audit_events WHERE seq <= ?',
  addCheckpoint:
    'INSERT INTO audit_checkpoints (seq, hash, time, kid, signature) VALUES (?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING',
  listCheckpoints: 'SELECT seq, hash, time, kid, signature FROM audit_checkpoints ORDER BY seq',
  pruneCheckpoints: 'DELETE FROM audit_checkpoints WHERE seq < ?',

  insertAlert: `INSERT INTO alerts (${ALERT_COLUMNS}) VALUES (${marks(10)}) RETURNING id`,
  listAlerts: (byDetector: boolean, state: 'open' | 'acknowledged' | undefined): string =>
    `SELECT ${ALERT_SELECT} FROM alerts WHERE id > ?${byDetector ? ' AND detector = ?' : ''}${
      state === undefined ? '' : ` AND acknowledged_at IS ${state === 'open' ? '' : 'NOT '}NULL`
    } ORDER BY id LIMIT ?`,
  getAlert: `SELECT ${ALERT_SELECT} FROM alerts WHERE id = ?`,
  acknowledgeAlert:
    'UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ? AND acknowledged_at IS NULL',

  insertConsoleSession:
    'INSERT INTO console_sessions (cookie_hash, sid, actor, sub, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
  consoleSessionByCookie:
    'SELECT sid, actor, sub, created_at, expires_at, ended_at FROM console_sessions WHERE cookie_hash = ?',
  endConsoleSession: 'UPDATE console_sessions SET ended_at = ? WHERE sid = ? AND ended_at IS NULL',
  purgeConsoleSessions: 'DELETE FROM console_sessions WHERE expires_at < ?',

  insertPolicyVersion: `INSERT INTO policy_versions (${POLICY_COLUMNS}) VALUES (${marks(8)})`,
  newestPolicyVersion: `SELECT ${POLICY_COLUMNS} FROM policy_versions ORDER BY version DESC LIMIT 1`,
  policyVersion: `SELECT ${POLICY_COLUMNS} FROM policy_versions WHERE version = ?`,
  listPolicyVersions: `SELECT ${POLICY_SUMMARY_COLUMNS} FROM policy_versions ORDER BY version DESC LIMIT ?`,

  getSetting: 'SELECT value FROM settings WHERE name = ?',
  insertSettingIfAbsent: 'INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
  upsertSetting:
    'INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
  replaceSetting: 'UPDATE settings SET value = ? WHERE name = ? AND value = ?',
} as const;

/**
 * Audit rows per insert statement: the largest power of two not above what is left, at most
 * 256 (3,584 parameters: under both databases' limits). A batch of any size takes at most
 * log2(256) + 1 statements, and only nine distinct statement texts ever exist (SQLite caches each).
 */
export function auditChunks(rows: number): number[] {
  const sizes: number[] = [];
  for (let left = rows; left > 0; ) {
    const n = Math.min(256, 2 ** Math.floor(Math.log2(left)));
    sizes.push(n);
    left -= n;
  }
  return sizes;
}
