/** One schema change, in the dialect of each adapter. Versions only ever grow; applied ones never change. */
export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

const common = (seqColumn: string, bool: string): string => `
CREATE TABLE clients (
  client_id TEXT PRIMARY KEY,
  metadata TEXT NOT NULL,
  secret_hash TEXT,
  registration_token_hash TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  disabled ${bool} NOT NULL
);
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY,
  alg TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('next', 'current', 'retired', 'revoked')),
  public_jwk TEXT NOT NULL,
  private_key_enc TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  activated_at BIGINT,
  retired_at BIGINT
);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';
CREATE TABLE used_jtis (
  id TEXT PRIMARY KEY,
  expires_at BIGINT NOT NULL
);
CREATE INDEX used_jtis_expires ON used_jtis (expires_at);
CREATE TABLE revoked_tokens (
  issuer TEXT NOT NULL,
  jti TEXT NOT NULL,
  client_id TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT NOT NULL,
  PRIMARY KEY (issuer, jti)
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);
CREATE TABLE audit_events (
  seq ${seqColumn},
  time TEXT NOT NULL,
  type TEXT NOT NULL,
  outcome TEXT NOT NULL,
  actor TEXT NOT NULL,
  subject TEXT,
  client_id TEXT,
  reason TEXT,
  request_id TEXT,
  source_ip TEXT,
  detail TEXT
);
CREATE INDEX audit_events_type ON audit_events (type, seq);
CREATE TABLE settings (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

const KEY_LIFECYCLE = `
ALTER TABLE signing_keys ADD COLUMN remove_after BIGINT;
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
`;

// Revocation entries (token, client/subject not-before, key) and key lifecycle events share one
// log whose seq is the feed cursor. Entries carry their own expiry and are purged after it.
const feeds = (seqColumn: string): string => `
CREATE TABLE feed_events (
  seq ${seqColumn},
  stream TEXT NOT NULL CHECK (stream IN ('revocations', 'keys')),
  kind TEXT NOT NULL,
  iss TEXT NOT NULL,
  ref TEXT NOT NULL,
  not_before BIGINT,
  expires_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  data TEXT
);
CREATE INDEX feed_events_lookup ON feed_events (stream, kind, iss, ref);
CREATE INDEX feed_events_stream ON feed_events (stream, seq);
CREATE INDEX feed_events_expires ON feed_events (expires_at);
DROP TABLE revoked_tokens;
`;

// Each audit event carries the hash of its predecessor; signed checkpoints pin the chain's head.
// Events written before this migration stay unchained (prev_hash NULL) and precede the chain.
const AUDIT_CHAIN = `
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_events ADD COLUMN hash TEXT;
CREATE TABLE audit_checkpoints (
  seq BIGINT PRIMARY KEY,
  hash TEXT NOT NULL,
  time TEXT NOT NULL,
  kid TEXT NOT NULL,
  signature TEXT NOT NULL
);
`;

// Detection: alerts raised by the detectors, and temporary client locks (a configured response).
const alerts = (idColumn: string): string => `
ALTER TABLE clients ADD COLUMN locked_until BIGINT;
CREATE TABLE alerts (
  id ${idColumn},
  time TEXT NOT NULL,
  detector TEXT NOT NULL,
  severity TEXT NOT NULL,
  subject_key TEXT NOT NULL,
  summary TEXT NOT NULL,
  first_seq BIGINT NOT NULL,
  last_seq BIGINT NOT NULL,
  count INTEGER NOT NULL,
  detail TEXT NOT NULL,
  response TEXT
);
CREATE INDEX alerts_detector ON alerts (detector, id);
`;

// Authorization: every published bundle (schema fragments, policies, entities) is a version; the
// newest is the active one. The feed gains a 'policy' stream announcing each version.
const POLICY_VERSIONS = `
CREATE TABLE policy_versions (
  version BIGINT PRIMARY KEY,
  digest TEXT NOT NULL,
  published_at TEXT NOT NULL,
  actor TEXT NOT NULL,
  note TEXT,
  schema_json TEXT NOT NULL,
  policies_json TEXT NOT NULL,
  entities_json TEXT NOT NULL
);
`;
// SQLite cannot change a CHECK in place: rebuild the table, keeping the AUTOINCREMENT counter so
// no cursor is ever handed out twice.
const FEED_POLICY_STREAM_SQLITE = `
CREATE TABLE feed_events_new (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  stream TEXT NOT NULL CHECK (stream IN ('revocations', 'keys', 'policy')),
  kind TEXT NOT NULL,
  iss TEXT NOT NULL,
  ref TEXT NOT NULL,
  not_before BIGINT,
  expires_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  data TEXT
);
INSERT INTO feed_events_new SELECT seq, stream, kind, iss, ref, not_before, expires_at, created_at, data FROM feed_events;
DELETE FROM sqlite_sequence WHERE name = 'feed_events_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'feed_events_new', seq FROM sqlite_sequence WHERE name = 'feed_events';
DROP TABLE feed_events;
ALTER TABLE feed_events_new RENAME TO feed_events;
CREATE INDEX feed_events_lookup ON feed_events (stream, kind, iss, ref);
CREATE INDEX feed_events_stream ON feed_events (stream, seq);
CREATE INDEX feed_events_expires ON feed_events (expires_at);
`;
const FEED_POLICY_STREAM_POSTGRES = `
ALTER TABLE feed_events DROP CONSTRAINT feed_events_stream_check;
ALTER TABLE feed_events ADD CONSTRAINT feed_events_stream_check CHECK (stream IN ('revocations', 'keys', 'policy'));
`;

const users = (bool: string) => `
CREATE TABLE users (
  sub TEXT PRIMARY KEY,
  username TEXT NOT NULL,
  username_key TEXT NOT NULL UNIQUE,
  email TEXT,
  name TEXT,
  password_hash TEXT,
  password_changed_at BIGINT,
  must_change_password ${bool} NOT NULL,
  roles TEXT NOT NULL,
  user_groups TEXT NOT NULL,
  attributes TEXT NOT NULL,
  disabled ${bool} NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  mfa_required ${bool} NOT NULL,
  totp_secret TEXT,
  totp_last_step BIGINT
);
CREATE TABLE recovery_codes (
  sub TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
  code_hash TEXT NOT NULL,
  used_at BIGINT,
  PRIMARY KEY (sub, code_hash)
);
CREATE TABLE passkeys (
  credential_id TEXT PRIMARY KEY,
  sub TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
  public_key TEXT NOT NULL,
  counter BIGINT NOT NULL,
  transports TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT
);
CREATE INDEX passkeys_subject ON passkeys (sub);
CREATE TABLE login_failures (
  key TEXT PRIMARY KEY,
  failures INTEGER NOT NULL,
  last_failure_at BIGINT NOT NULL
);
CREATE INDEX login_failures_age ON login_failures (last_failure_at);
CREATE TABLE authorization_codes (
  code_hash TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  sub TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  scope TEXT,
  nonce TEXT,
  resource TEXT,
  auth_time BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT,
  jti TEXT,
  family_id TEXT,
  sid TEXT
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);
CREATE TABLE refresh_families (
  family_id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  sub TEXT NOT NULL,
  scope TEXT,
  resource TEXT,
  auth_time BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT,
  revoked_reason TEXT,
  sid TEXT
);
CREATE INDEX refresh_families_session ON refresh_families (sid);
CREATE INDEX refresh_families_subject ON refresh_families (sub);
CREATE INDEX refresh_families_expiry ON refresh_families (expires_at);
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  family_id TEXT NOT NULL REFERENCES refresh_families (family_id) ON DELETE CASCADE,
  issued_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT,
  jti TEXT NOT NULL,
  jti_expires_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE TABLE pushed_requests (
  ref_hash TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  request TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT
);
CREATE INDEX pushed_requests_expiry ON pushed_requests (expires_at);
CREATE TABLE user_sessions (
  sid_hash TEXT PRIMARY KEY,
  sid TEXT NOT NULL UNIQUE,
  sub TEXT NOT NULL,
  auth_time BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  ended_at BIGINT
);
CREATE INDEX user_sessions_subject ON user_sessions (sub);
CREATE INDEX user_sessions_expiry ON user_sessions (expires_at);
`;

/** A user's consent to a third-party client; it goes with the user, and with the client (an id registered again is another client). */
const CONSENTS = `
CREATE TABLE user_consents (
  sub TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
  client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
  scope TEXT,
  resource TEXT NOT NULL,
  granted_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (sub, client_id)
);
CREATE INDEX user_consents_client ON user_consents (client_id);
`;

/** The transaction id of audit events (lifted from their detail): one user request traced across services. */
const AUDIT_TXN = `
ALTER TABLE audit_events ADD COLUMN txn TEXT;
CREATE INDEX audit_events_txn ON audit_events (txn) WHERE txn IS NOT NULL;
`;

/**
 * Token Status List (draft-ietf-oauth-status-list): lists (shards) with the size they were made
 * with and when every token in them has expired, the allocation cursor every replica takes blocks
 * of indices from, and one row per token that carries a `status` claim — what its bit is computed
 * from when a revocation covers it. Few indexes: each is written on the token path. A token is
 * found by jti without one (its jti names its list and index: status/status_jti.ts); a service's
 * token (sub = client_id) by its client; only users' tokens are indexed by subject.
 */
const statusLists = (withoutRowid: string): string => `
CREATE TABLE status_lists (
  list_id BIGINT PRIMARY KEY,
  size BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE TABLE status_allocation (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  list_id BIGINT NOT NULL,
  next_idx BIGINT NOT NULL
);
CREATE TABLE token_statuses (
  list_id BIGINT NOT NULL,
  idx BIGINT NOT NULL,
  jti TEXT NOT NULL,
  origin_jti TEXT,
  client_id TEXT NOT NULL,
  sub TEXT NOT NULL,
  kid TEXT NOT NULL,
  iat BIGINT NOT NULL,
  PRIMARY KEY (list_id, idx)
)${withoutRowid};
CREATE INDEX token_statuses_origin ON token_statuses (origin_jti) WHERE origin_jti IS NOT NULL;
CREATE INDEX token_statuses_client ON token_statuses (client_id, iat);
CREATE INDEX token_statuses_sub ON token_statuses (sub, iat) WHERE sub <> client_id;
`;

/**
 * Shared Signals (SSF 1.0) streams of the receivers, the subjects each one added or removed, and
 * the SETs waiting for delivery (push) or acknowledgement (poll), in order per stream.
 */
const ssf = (seqColumn: string): string => `
CREATE TABLE ssf_streams (
  stream_id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  aud TEXT NOT NULL,
  method TEXT NOT NULL,
  endpoint_url TEXT,
  authorization_header TEXT,
  events_requested TEXT NOT NULL,
  description TEXT,
  status TEXT NOT NULL CHECK (status IN ('enabled', 'paused', 'disabled')),
  reason TEXT,
  verified_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX ssf_streams_client ON ssf_streams (client_id);
CREATE TABLE ssf_subjects (
  stream_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  included INTEGER NOT NULL,
  PRIMARY KEY (stream_id, subject)
);
CREATE TABLE ssf_queue (
  seq ${seqColumn},
  stream_id TEXT NOT NULL,
  jti TEXT NOT NULL,
  event_type TEXT NOT NULL,
  set_jwt TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  last_error TEXT
);
CREATE INDEX ssf_queue_stream ON ssf_queue (stream_id, seq);
CREATE UNIQUE INDEX ssf_queue_jti ON ssf_queue (stream_id, jti);
`;

/** Federated workload identity: issuers an administrator trusts, and rules mapping their tokens to clients. */
const FEDERATION = `
CREATE TABLE federation_issuers (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('oidc', 'spiffe')),
  issuer TEXT NOT NULL,
  config TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX federation_issuers_issuer ON federation_issuers (kind, issuer);
CREATE TABLE federation_rules (
  name TEXT PRIMARY KEY,
  issuer TEXT NOT NULL,
  client_id TEXT NOT NULL,
  config TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX federation_rules_issuer ON federation_rules (issuer);
`;

// The admin console: its sign-in sessions (the browser holds a random secret, the database its
// hash), and alerts an operator has acknowledged.
const CONSOLE = `
CREATE TABLE console_sessions (
  cookie_hash TEXT PRIMARY KEY,
  sid TEXT NOT NULL UNIQUE,
  actor TEXT NOT NULL,
  sub TEXT,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  ended_at BIGINT
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
ALTER TABLE alerts ADD COLUMN acknowledged_at TEXT;
ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT;
`;

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'core: clients, signing keys, replay, revocation, audit, settings',
    sqlite: common('INTEGER PRIMARY KEY AUTOINCREMENT', 'INTEGER'),
    postgres: common('BIGSERIAL PRIMARY KEY', 'BOOLEAN'),
  },
  {
    version: 2,
    name: 'key lifecycle: removal time, one next key, leases',
    sqlite: KEY_LIFECYCLE,
    postgres: KEY_LIFECYCLE,
  },
  {
    version: 3,
    name: 'feeds: revocations and key events in one cursor-ordered log',
    sqlite: feeds('INTEGER PRIMARY KEY AUTOINCREMENT'),
    postgres: feeds('BIGSERIAL PRIMARY KEY'),
  },
  {
    version: 4,
    name: 'audit hash chain and signed checkpoints',
    sqlite: AUDIT_CHAIN,
    postgres: AUDIT_CHAIN,
  },
  {
    version: 5,
    name: 'alerts and client locks',
    sqlite: alerts('INTEGER PRIMARY KEY AUTOINCREMENT'),
    postgres: alerts('BIGSERIAL PRIMARY KEY'),
  },
  {
    version: 6,
    name: 'policy versions and the policy feed stream',
    sqlite: POLICY_VERSIONS + FEED_POLICY_STREAM_SQLITE,
    postgres: POLICY_VERSIONS + FEED_POLICY_STREAM_POSTGRES,
  },
  {
    version: 7,
    name: 'users, login failure counts, authorization codes, refresh token families, pushed authorization requests, sessions, second factors',
    sqlite: users('INTEGER'),
    postgres: users('BOOLEAN'),
  },
  {
    version: 8,
    name: 'consents of users to third-party clients',
    sqlite: CONSENTS,
    postgres: CONSENTS,
  },
  {
    version: 9,
    name: 'audit events indexed by transaction',
    sqlite: AUDIT_TXN,
    postgres: AUDIT_TXN,
  },
  {
    version: 10,
    name: 'token status lists: shards, allocation cursor, token entries',
    sqlite: statusLists(' WITHOUT ROWID'),
    postgres: statusLists(''),
  },
  {
    version: 11,
    name: 'shared signals: streams, their subjects, the SETs waiting for delivery',
    sqlite: ssf('INTEGER PRIMARY KEY AUTOINCREMENT'),
    postgres: ssf('BIGSERIAL PRIMARY KEY'),
  },
  {
    version: 12,
    name: 'federated workload identity: trusted issuers and mapping rules',
    sqlite: FEDERATION,
    postgres: FEDERATION,
  },
  {
    version: 13,
    name: 'admin console: sign-in sessions, acknowledged alerts',
    sqlite: CONSOLE,
    postgres: CONSOLE,
  },
];
