import type { AuditEvent, AuditEventType, AuditOutcome, SigningAlgorithm } from '@latchkey/protocol';
import { chainHash } from './audit_chain.ts';
import type {
  AlertRecord,
  ConsoleSessionRecord,
  AuditFilter,
  AuditRecord,
  ClientRecord,
  NewAlert,
  PolicyVersionRecord,
  PolicyVersionSummary,
  FeedEventRecord,
  FeedStream,
  KeyState,
  SigningKeyRecord,
  UserRecord,
  AuthorizationCodeRecord,
  RefreshFamilyRecord,
  RefreshTokenRecord,
  SessionRecord,
  ConsentRecord,
  TokenStatusRecord,
  SsfStreamRecord,
  QueuedSetRecord,
} from './ports.ts';

/** Row shapes shared by the SQL adapters, and their mapping to records. */
export interface ClientRow {
  client_id: string;
  metadata: string;
  secret_hash: string | null;
  registration_token_hash: string;
  created_at: number | string;
  updated_at: number | string;
  disabled: number | boolean;
  locked_until: number | string | null;
}

export const clientFromRow = (r: ClientRow): ClientRecord => ({
  clientId: r.client_id,
  metadata: JSON.parse(r.metadata) as ClientRecord['metadata'],
  secretHash: r.secret_hash,
  registrationTokenHash: r.registration_token_hash,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
  disabled: Boolean(r.disabled),
  lockedUntil: r.locked_until === null ? null : Number(r.locked_until),
});

export const clientParams = (c: ClientRecord): unknown[] => [
  c.clientId,
  JSON.stringify(c.metadata),
  c.secretHash,
  c.registrationTokenHash,
  c.createdAt,
  c.updatedAt,
];

/** What an update of a user sets, in `userChangeParams` order. */
export const USER_CHANGE_COLUMNS =
  'username, email, name, password_hash, password_changed_at, must_change_password, roles, user_groups, attributes, disabled, updated_at, mfa_required, totp_secret, totp_last_step';
/** Every column: what never changes (`userParams` puts it first), then what an update sets. */
export const USER_COLUMNS = `sub, username_key, created_at, ${USER_CHANGE_COLUMNS}`;

export interface UserRow {
  sub: string;
  username: string;
  username_key: string;
  email: string | null;
  name: string | null;
  password_hash: string | null;
  password_changed_at: number | string | null;
  must_change_password: number | boolean;
  roles: string;
  user_groups: string;
  attributes: string;
  disabled: number | boolean;
  created_at: number | string;
  updated_at: number | string;
  mfa_required: number | boolean;
  totp_secret: string | null;
  totp_last_step: number | string | null;
}

export const userFromRow = (r: UserRow): UserRecord => ({
  sub: r.sub,
  username: r.username,
  usernameKey: r.username_key,
  email: r.email,
  name: r.name,
  passwordHash: r.password_hash,
  passwordChangedAt: r.password_changed_at === null ? null : Number(r.password_changed_at),
  mustChangePassword: Boolean(r.must_change_password),
  roles: JSON.parse(r.roles) as string[],
  groups: JSON.parse(r.user_groups) as string[],
  attributes: JSON.parse(r.attributes) as Record<string, unknown>,
  disabled: Boolean(r.disabled),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
  mfaRequired: Boolean(r.mfa_required),
  totpSecret: r.totp_secret,
  totpLastStep: r.totp_last_step === null ? null : Number(r.totp_last_step),
});

/** What an update sets, in USER_CHANGE_COLUMNS order. */
export const userChangeParams = (u: UserRecord): unknown[] => [
  u.username,
  u.email,
  u.name,
  u.passwordHash,
  u.passwordChangedAt,
  u.mustChangePassword,
  JSON.stringify(u.roles),
  JSON.stringify(u.groups),
  JSON.stringify(u.attributes),
  u.disabled,
  u.updatedAt,
  u.mfaRequired,
  u.totpSecret,
  u.totpLastStep,
];

/** In USER_COLUMNS order. */
export const userParams = (u: UserRecord): unknown[] => [u.sub, u.usernameKey, u.createdAt, ...userChangeParams(u)];

export const CODE_COLUMNS =
  'code_hash, client_id, sub, redirect_uri, code_challenge, scope, nonce, resource, auth_time, expires_at, sid';

export interface CodeRow {
  code_hash: string;
  client_id: string;
  sub: string;
  redirect_uri: string;
  code_challenge: string;
  scope: string | null;
  nonce: string | null;
  resource: string | null;
  auth_time: number | string;
  expires_at: number | string;
  sid: string | null;
  used_at?: number | string | null;
  jti?: string | null;
  family_id?: string | null;
}

export const codeFromRow = (r: CodeRow): AuthorizationCodeRecord => ({
  codeHash: r.code_hash,
  clientId: r.client_id,
  sub: r.sub,
  redirectUri: r.redirect_uri,
  codeChallenge: r.code_challenge,
  scope: r.scope,
  nonce: r.nonce,
  resource: r.resource === null ? null : (JSON.parse(r.resource) as string[]),
  authTime: Number(r.auth_time),
  expiresAt: Number(r.expires_at),
  sid: r.sid,
});

export const codeParams = (c: AuthorizationCodeRecord): unknown[] => [
  c.codeHash,
  c.clientId,
  c.sub,
  c.redirectUri,
  c.codeChallenge,
  c.scope,
  c.nonce,
  c.resource === null ? null : JSON.stringify(c.resource),
  c.authTime,
  c.expiresAt,
  c.sid,
];

export const FAMILY_COLUMNS =
  'family_id, client_id, sub, scope, resource, auth_time, created_at, expires_at, revoked_at, revoked_reason, sid';
export const REFRESH_COLUMNS = 'token_hash, family_id, issued_at, expires_at, used_at, jti, jti_expires_at';

export interface FamilyRow {
  family_id: string;
  client_id: string;
  sub: string;
  scope: string | null;
  resource: string | null;
  auth_time: number | string;
  created_at: number | string;
  expires_at: number | string;
  revoked_at: number | string | null;
  revoked_reason: string | null;
  sid: string | null;
}

export interface RefreshRow {
  token_hash: string;
  family_id: string;
  issued_at: number | string;
  expires_at: number | string;
  used_at: number | string | null;
  jti: string;
  jti_expires_at: number | string;
}

export const familyFromRow = (r: FamilyRow): RefreshFamilyRecord => ({
  familyId: r.family_id,
  clientId: r.client_id,
  sub: r.sub,
  scope: r.scope,
  resource: r.resource === null ? null : (JSON.parse(r.resource) as string[]),
  authTime: Number(r.auth_time),
  createdAt: Number(r.created_at),
  expiresAt: Number(r.expires_at),
  revokedAt: numOrNull(r.revoked_at),
  revokedReason: r.revoked_reason,
  sid: r.sid,
});

export const familyParams = (f: RefreshFamilyRecord): unknown[] => [
  f.familyId,
  f.clientId,
  f.sub,
  f.scope,
  f.resource === null ? null : JSON.stringify(f.resource),
  f.authTime,
  f.createdAt,
  f.expiresAt,
  f.revokedAt,
  f.revokedReason,
  f.sid,
];

export const refreshFromRow = (r: RefreshRow): RefreshTokenRecord => ({
  tokenHash: r.token_hash,
  familyId: r.family_id,
  issuedAt: Number(r.issued_at),
  expiresAt: Number(r.expires_at),
  usedAt: numOrNull(r.used_at),
  jti: r.jti,
  jtiExpiresAt: Number(r.jti_expires_at),
});

export const refreshParams = (t: RefreshTokenRecord): unknown[] => [
  t.tokenHash,
  t.familyId,
  t.issuedAt,
  t.expiresAt,
  t.usedAt,
  t.jti,
  t.jtiExpiresAt,
];

export interface SessionRow {
  sid: string;
  sub: string;
  auth_time: number | string;
  expires_at: number | string;
  ended_at: number | string | null;
}

export const sessionFromRow = (r: SessionRow): SessionRecord => ({
  sid: r.sid,
  sub: r.sub,
  authTime: Number(r.auth_time),
  expiresAt: Number(r.expires_at),
  endedAt: numOrNull(r.ended_at),
});

export interface KeyRow {
  kid: string;
  alg: string;
  state: string;
  public_jwk: string;
  private_key_enc: string;
  created_at: number | string;
  activated_at: number | string | null;
  retired_at: number | string | null;
  remove_after: number | string | null;
}

const numOrNull = (v: number | string | null): number | null => (v === null ? null : Number(v));

export const keyFromRow = (r: KeyRow): SigningKeyRecord => ({
  kid: r.kid,
  alg: r.alg as SigningAlgorithm,
  state: r.state as KeyState,
  publicJwk: JSON.parse(r.public_jwk) as Record<string, unknown>,
  privateKeyEnc: r.private_key_enc,
  createdAt: Number(r.created_at),
  activatedAt: numOrNull(r.activated_at),
  retiredAt: numOrNull(r.retired_at),
  removeAfter: numOrNull(r.remove_after),
});

export const keyParams = (k: SigningKeyRecord): unknown[] => [
  k.kid,
  k.alg,
  k.state,
  JSON.stringify(k.publicJwk),
  k.privateKeyEnc,
  k.createdAt,
  k.activatedAt,
  k.retiredAt,
  k.removeAfter,
];

export interface AuditRow {
  seq: number | string;
  time: string;
  type: string;
  outcome: string;
  actor: string;
  subject: string | null;
  client_id: string | null;
  reason: string | null;
  request_id: string | null;
  source_ip: string | null;
  detail: string | null;
  prev_hash?: string | null;
  hash?: string | null;
}

export const auditParams = (e: AuditEvent): unknown[] => [
  e.time,
  e.type,
  e.outcome,
  e.actor,
  e.subject ?? null,
  e.client_id ?? null,
  e.reason ?? null,
  e.request_id ?? null,
  e.source_ip ?? null,
  e.detail === undefined ? null : JSON.stringify(e.detail),
];

/** The stored values of an audit row, in AUDIT_COLUMNS order: what the chain hash covers. */
export const auditRowValues = (r: AuditRow): unknown[] => [
  r.time,
  r.type,
  r.outcome,
  r.actor,
  r.subject,
  r.client_id,
  r.reason,
  r.request_id,
  r.source_ip,
  r.detail,
];

export const auditRecordFromRow = (r: AuditRow): AuditRecord => ({
  ...auditFromRow(r),
  seq: Number(r.seq),
  prevHash: r.prev_hash ?? null,
  hash: r.hash ?? null,
});

export const auditFromRow = (r: AuditRow): AuditEvent => {
  const e: AuditEvent = {
    time: r.time,
    type: r.type as AuditEventType,
    outcome: r.outcome as AuditOutcome,
    actor: r.actor,
  };
  if (r.subject !== null) e.subject = r.subject;
  if (r.client_id !== null) e.client_id = r.client_id;
  if (r.reason !== null) e.reason = r.reason;
  if (r.request_id !== null) e.request_id = r.request_id;
  if (r.source_ip !== null) e.source_ip = r.source_ip;
  if (r.detail !== null) e.detail = JSON.parse(r.detail) as Record<string, unknown>;
  return e;
};

export interface FeedRow {
  seq: number | string;
  stream: string;
  kind: string;
  iss: string;
  ref: string;
  not_before: number | string | null;
  expires_at: number | string;
  created_at: number | string;
  data: string | null;
}

export const feedFromRow = (r: FeedRow): FeedEventRecord => ({
  seq: Number(r.seq),
  stream: r.stream as FeedStream,
  kind: r.kind,
  iss: r.iss,
  ref: r.ref,
  notBefore: numOrNull(r.not_before),
  expiresAt: Number(r.expires_at),
  createdAt: Number(r.created_at),
  data: r.data === null ? null : (JSON.parse(r.data) as Record<string, unknown>),
});

export const feedParams = (e: Omit<FeedEventRecord, 'seq'>): unknown[] => [
  e.stream,
  e.kind,
  e.iss,
  e.ref,
  e.notBefore,
  e.expiresAt,
  e.createdAt,
  e.data === null ? null : JSON.stringify(e.data),
];

export const FEED_COLUMNS = 'stream, kind, iss, ref, not_before, expires_at, created_at, data';

export const SSF_STREAM_COLUMNS =
  'stream_id, client_id, aud, method, endpoint_url, authorization_header, events_requested, description, status, reason, verified_at, created_at, updated_at';

export interface SsfStreamRow {
  stream_id: string;
  client_id: string;
  aud: string;
  method: string;
  endpoint_url: string | null;
  authorization_header: string | null;
  events_requested: string;
  description: string | null;
  status: string;
  reason: string | null;
  verified_at: number | string | null;
  created_at: number | string;
  updated_at: number | string;
}

export const ssfStreamFromRow = (r: SsfStreamRow): SsfStreamRecord => ({
  streamId: r.stream_id,
  clientId: r.client_id,
  aud: JSON.parse(r.aud) as string[],
  method: r.method as SsfStreamRecord['method'],
  endpointUrl: r.endpoint_url,
  authorizationHeader: r.authorization_header,
  eventsRequested: JSON.parse(r.events_requested) as string[],
  description: r.description,
  status: r.status as SsfStreamRecord['status'],
  reason: r.reason,
  verifiedAt: numOrNull(r.verified_at),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

/** The stream's columns in SSF_STREAM_COLUMNS order. */
export const ssfStreamParams = (s: SsfStreamRecord): unknown[] => [
  s.streamId,
  s.clientId,
  JSON.stringify(s.aud),
  s.method,
  s.endpointUrl,
  s.authorizationHeader,
  JSON.stringify(s.eventsRequested),
  s.description,
  s.status,
  s.reason,
  s.verifiedAt,
  s.createdAt,
  s.updatedAt,
];

export const QUEUED_SET_COLUMNS =
  'seq, stream_id, jti, event_type, set_jwt, created_at, attempts, next_attempt_at, last_error';

export const queuedSetFromRow = (r: {
  seq: number | string;
  stream_id: string;
  jti: string;
  event_type: string;
  set_jwt: string;
  created_at: number | string;
  attempts: number | string;
  next_attempt_at: number | string;
  last_error: string | null;
}): QueuedSetRecord => ({
  seq: Number(r.seq),
  streamId: r.stream_id,
  jti: r.jti,
  eventType: r.event_type,
  set: r.set_jwt,
  createdAt: Number(r.created_at),
  attempts: Number(r.attempts),
  nextAttemptAt: Number(r.next_attempt_at),
  lastError: r.last_error,
});

export const TOKEN_STATUS_COLUMNS = 'list_id, idx, jti, origin_jti, client_id, sub, kid, iat';

export const tokenStatusParams = (r: TokenStatusRecord): unknown[] => [
  r.listId,
  r.idx,
  r.jti,
  r.originJti,
  r.clientId,
  r.sub,
  r.kid,
  r.iat,
];
/** Rows to insert, chained after (headSeq, headHash): [seq, prev_hash, hash, ...values]. */
export function chainRows(events: readonly AuditEvent[], headSeq: number, headHash: string): unknown[][] {
  let prev = headHash;
  return events.map((e, i) => {
    const seq = headSeq + i + 1;
    const values = auditParams(e);
    const hash = chainHash(prev, seq, values);
    // The transaction id (a Txn-Token's `txn`) is the detail's: indexed, not hashed twice.
    const txn = typeof e.detail?.txn === 'string' ? e.detail.txn.slice(0, 128) : null;
    const row = [seq, prev, hash, ...values, txn];
    prev = hash;
    return row;
  });
}

/** Builds the WHERE clause of an audit query (`?` placeholders, as in the SQL catalogue). */
export function auditWhere(f: AuditFilter): { sql: string; values: unknown[] } {
  const parts: string[] = [];
  const values: unknown[] = [];
  const add = (column: string, op: string, value: unknown) => {
    values.push(value);
    parts.push(`${column} ${op} ?`);
  };
  if (f.type !== undefined) add('type', '=', f.type);
  if (f.actor !== undefined) add('actor', '=', f.actor);
  if (f.subject !== undefined) add('subject', '=', f.subject);
  if (f.client_id !== undefined) add('client_id', '=', f.client_id);
  if (f.outcome !== undefined) add('outcome', '=', f.outcome);
  if (f.txn !== undefined) add('txn', '=', f.txn);
  if (f.from !== undefined) add('time', '>=', f.from);
  if (f.to !== undefined) add('time', '<=', f.to);
  add('seq', '>', f.after ?? 0);
  return { sql: parts.join(' AND '), values };
}

export const AUDIT_COLUMNS = 'time, type, outcome, actor, subject, client_id, reason, request_id, source_ip, detail';
export const KEY_COLUMNS =
  'kid, alg, state, public_jwk, private_key_enc, created_at, activated_at, retired_at, remove_after';
export const CLIENT_COLUMNS =
  'client_id, metadata, secret_hash, registration_token_hash, created_at, updated_at, disabled';
/** What a client read selects: the inserted columns and the lock set apart from them. */
export const CLIENT_SELECT = `${CLIENT_COLUMNS}, locked_until`;
export const ALERT_COLUMNS =
  'time, detector, severity, subject_key, summary, first_seq, last_seq, count, detail, response';
/** What an alert read selects: the inserted columns and the acknowledgement set apart from them. */
export const ALERT_SELECT = `id, ${ALERT_COLUMNS}, acknowledged_at, acknowledged_by`;

export interface AlertRow {
  id: number | string;
  time: string;
  detector: string;
  severity: string;
  subject_key: string;
  summary: string;
  first_seq: number | string;
  last_seq: number | string;
  count: number | string;
  detail: string;
  response: string | null;
  acknowledged_at?: string | null;
  acknowledged_by?: string | null;
}

export const alertFromRow = (r: AlertRow): AlertRecord => ({
  id: Number(r.id),
  time: r.time,
  detector: r.detector,
  severity: r.severity as AlertRecord['severity'],
  key: r.subject_key,
  summary: r.summary,
  firstSeq: Number(r.first_seq),
  lastSeq: Number(r.last_seq),
  count: Number(r.count),
  detail: JSON.parse(r.detail) as Record<string, unknown>,
  response: r.response,
  acknowledgedAt: r.acknowledged_at ?? null,
  acknowledgedBy: r.acknowledged_by ?? null,
});

export const alertParams = (a: NewAlert): unknown[] => [
  a.time,
  a.detector,
  a.severity,
  a.key,
  a.summary,
  a.firstSeq,
  a.lastSeq,
  a.count,
  JSON.stringify(a.detail),
  a.response,
];

export const POLICY_COLUMNS = 'version, digest, published_at, actor, note, schema_json, policies_json, entities_json';
export const POLICY_SUMMARY_COLUMNS = 'version, digest, published_at, actor, note';

export interface PolicyRow {
  version: number | string;
  digest: string;
  published_at: string;
  actor: string;
  note: string | null;
  schema_json?: string;
  policies_json?: string;
  entities_json?: string;
}

export const policySummaryFromRow = (r: PolicyRow): PolicyVersionSummary => ({
  version: Number(r.version),
  digest: r.digest,
  publishedAt: r.published_at,
  actor: r.actor,
  note: r.note,
});

export const policyFromRow = (r: PolicyRow): PolicyVersionRecord => ({
  ...policySummaryFromRow(r),
  schema: JSON.parse(r.schema_json!) as Record<string, string>,
  policies: JSON.parse(r.policies_json!) as Record<string, string>,
  entities: JSON.parse(r.entities_json!) as PolicyVersionRecord['entities'],
});

export const policyParams = (p: PolicyVersionRecord): unknown[] => [
  p.version,
  p.digest,
  p.publishedAt,
  p.actor,
  p.note,
  JSON.stringify(p.schema),
  JSON.stringify(p.policies),
  JSON.stringify(p.entities),
];

export interface ConsentRow {
  sub: string;
  client_id: string;
  scope: string | null;
  resource: string;
  granted_at: number | string;
  updated_at: number | string;
}

export const consentFromRow = (r: ConsentRow): ConsentRecord => ({
  sub: r.sub,
  clientId: r.client_id,
  scope: r.scope,
  resource: JSON.parse(r.resource) as string[],
  grantedAt: Number(r.granted_at),
  updatedAt: Number(r.updated_at),
});

export interface ConsoleSessionRow {
  sid: string;
  actor: string;
  sub: string | null;
  created_at: number | string;
  expires_at: number | string;
  ended_at: number | string | null;
}

export const consoleSessionFromRow = (r: ConsoleSessionRow): ConsoleSessionRecord => ({
  sid: r.sid,
  actor: r.actor,
  sub: r.sub,
  createdAt: Number(r.created_at),
  expiresAt: Number(r.expires_at),
  endedAt: r.ended_at === null ? null : Number(r.ended_at),
});
