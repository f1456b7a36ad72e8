import type {
  AuditEvent,
  PolicyBundle,
  SigningAlgorithm,
  TokenEndpointAuthMethod,
  GrantType,
} from '@latchkey/protocol';

/** Registered client metadata (RFC 7591 §2 plus Latchkey's `audiences`, `default_audience`, `roles`, `access_token_ttl`). */
export interface ClientMetadata {
  client_name?: string;
  grant_types: GrantType[];
  token_endpoint_auth_method: TokenEndpointAuthMethod;
  token_endpoint_auth_signing_alg?: string;
  jwks?: { keys: Record<string, unknown>[] };
  jwks_uri?: string;
  scope?: string;
  audiences: string[];
  default_audience?: string;
  roles?: string[];
  access_token_ttl?: number;
  /** Cedar namespaces whose policy this service receives from `GET /feeds/policy` (Latchkey extension); all when absent. */
  policy_namespaces?: string[];
  /** RFC 8705 §2.1.2: the SPIFFE ID a tls_client_auth client's certificate must carry (always its own). */
  tls_client_auth_san_uri?: string;
  /** RFC 8705 §3.4: every access token of this client is bound to its client certificate. */
  tls_client_certificate_bound_access_tokens?: boolean;
  /** RFC 7591 §2: where /authorize may send the browser back, compared exactly (RFC 9700 §2.1). */
  redirect_uris?: string[];
  /** OpenID Connect RP-Initiated Logout §3.1: where /end_session may send the browser afterwards. */
  post_logout_redirect_uris?: string[];
  /** Every user signing in to this client uses a second factor (Latchkey extension). */
  require_second_factor?: boolean;
  /** RFC 9126 §6: this client's authorization requests must be pushed first. */
  require_pushed_authorization_requests?: boolean;
  /**
   * A third-party client: users are asked to consent to what it requests (scopes and resources)
   * before it gets a code, and their answer is remembered (OpenID Connect Core §3.1.2.4).
   */
  consent_required?: boolean;
  /** Names of user attributes this client's user tokens carry (`attributes` claim); none by default. */
  user_attributes?: string[];
}

export interface ClientRecord {
  clientId: string;
  metadata: ClientMetadata;
  /** Keyed hash of the client secret; null for private_key_jwt clients. */
  secretHash: string | null;
  /** Keyed hash of the RFC 7592 registration access token. */
  registrationTokenHash: string;
  createdAt: number;
  updatedAt: number;
  disabled: boolean;
  /** Epoch seconds until which authentication is refused (a detector's response), or null. */
  lockedUntil: number | null;
}

/**
 * Audit events to write in the same transaction as a change (chained like any other), so that the
 * event exists if and only if the change committed. Written only when the change took effect.
 */
export type WithAudit = readonly AuditEvent[] | undefined;

export interface ClientStore {
  createClient(client: ClientRecord, audit?: WithAudit): Promise<void>;
  getClient(clientId: string): Promise<ClientRecord | undefined>;
  /** Replaces metadata and hashes; returns false when the client does not exist. */
  updateClient(client: ClientRecord, audit?: WithAudit): Promise<boolean>;
  deleteClient(clientId: string, audit?: WithAudit): Promise<boolean>;
  listClients(): Promise<ClientRecord[]>;
  /** Sets or clears (null) the client's lock; false when the client does not exist. */
  lockClient(clientId: string, until: number | null, audit?: WithAudit): Promise<boolean>;
}

/** A person who signs in at the edge (issue 15). */
export interface UserRecord {
  /** The subject identifier: stable, never reused, never reassigned (OpenID Connect Core §2 `sub`). */
  sub: string;
  /** As given at creation; `usernameKey` (NFKC, lower case) is what must be unique. */
  username: string;
  usernameKey: string;
  email: string | null;
  name: string | null;
  /** PHC string of a memory-hard hash (users/password_hash.ts); null when none is set. */
  passwordHash: string | null;
  passwordChangedAt: number | null;
  /** The next login must set a new password (set by an administrator's reset). */
  mustChangePassword: boolean;
  /** Cedar parents: `Role::"…"` and `Group::"…"`. */
  roles: string[];
  groups: string[];
  /** Cedar attributes of `User::"<sub>"`. */
  attributes: Record<string, unknown>;
  disabled: boolean;
  createdAt: number;
  updatedAt: number;
  /** The user must sign in with a second factor (enrolling one at the next sign-in if they have none). */
  mfaRequired: boolean;
  /** The TOTP secret, sealed under the master key; null when none is enrolled. */
  totpSecret: string | null;
  /** The last TOTP time step accepted (a code works once). */
  totpLastStep: number | null;
}

/** One page of users, in username order; `next` is the cursor of the following page. */
export interface UserPage {
  users: UserRecord[];
  next: string | null;
}

export interface UserStore {
  /** Throws `storage_conflict` when the username (compared by its key) is taken. */
  createUser(user: UserRecord, audit?: WithAudit): Promise<void>;
  getUser(sub: string): Promise<UserRecord | undefined>;
  getUserByUsername(usernameKey: string): Promise<UserRecord | undefined>;
  /** Users whose username key is after `after`, at most `limit`. */
  listUsers(options: { after?: string; limit: number }): Promise<UserPage>;
  /** Replaces everything but `sub`, `usernameKey` and `createdAt`; false when the user does not exist. */
  updateUser(user: UserRecord, audit?: WithAudit): Promise<boolean>;
  deleteUser(sub: string, audit?: WithAudit): Promise<boolean>;
  /** Records a TOTP step as used, atomically: false when it (or a later one) was used already. */
  useTotpStep(sub: string, step: number): Promise<boolean>;
  /** Replaces a user's recovery codes (their hashes). */
  setRecoveryCodes(sub: string, hashes: readonly string[]): Promise<void>;
  /** Uses a recovery code once (atomically); false when it is not one of theirs or was used. */
  useRecoveryCode(sub: string, hash: string, now: number): Promise<boolean>;
  /** Recovery codes not used yet. */
  recoveryCodesLeft(sub: string): Promise<number>;
  /** A WebAuthn credential (passkey) the user registered. */
  addPasskey(passkey: PasskeyRecord): Promise<void>;
  listPasskeys(sub: string): Promise<PasskeyRecord[]>;
  /** Records a use: the authenticator's new signature counter. */
  usePasskey(credentialId: string, counter: number, now: number): Promise<void>;
  /** Removes every passkey of a user (an administrator's reset). */
  removePasskeys(sub: string): Promise<void>;
}

/** What a user agreed a third-party client may have: its scopes and resources, as granted. */
export interface ConsentRecord {
  sub: string;
  clientId: string;
  /** Space-separated scopes granted (null: none beyond the sign-in itself). */
  scope: string | null;
  /** Resource indicators (RFC 8707) granted. */
  resource: string[];
  grantedAt: number;
  updatedAt: number;
}

export interface ConsentStore {
  getConsent(sub: string, clientId: string): Promise<ConsentRecord | undefined>;
  /** Creates or replaces the user's consent to the client, with its audit events. */
  saveConsent(consent: ConsentRecord, audit?: WithAudit): Promise<void>;
  /** A user's consents, by client id. */
  listConsents(sub: string): Promise<ConsentRecord[]>;
  /** Withdraws a consent, with its audit events; false (and no events) when there was none. */
  deleteConsent(sub: string, clientId: string, audit?: WithAudit): Promise<boolean>;
}

/** A WebAuthn credential (W3C Web Authentication Level 3). */
export interface PasskeyRecord {
  /** base64url, as the authenticator made it. */
  credentialId: string;
  sub: string;
  /** COSE public key, base64url. */
  publicKey: string;
  counter: number;
  transports: string[];
  createdAt: number;
  lastUsedAt: number | null;
}

/**
 * Failed logins counted per key (a user, a user from one source), shared by every replica: each
 * count is one atomic upsert, so concurrent failures at several replicas are all counted.
 */
export interface LoginFailureStore {
  /**
   * Counts one failure against each key at `now` (epoch ms) and returns the counts, in order (keys are
   * text without NUL, which PostgreSQL does not store). A key
   * whose last failure is `windowMs` or more ago starts again at 1.
   */
  recordLoginFailure(keys: readonly string[], now: number, windowMs: number): Promise<number[]>;
  /** The current counts and last failure times (epoch ms) of these keys; absent keys are left out. */
  loginFailures(keys: readonly string[]): Promise<Map<string, { failures: number; lastFailureAt: number }>>;
  /** Forgets these keys (a successful login). */
  clearLoginFailures(keys: readonly string[]): Promise<void>;
  /** Forgets `key` and every key that starts with `key` and a space (an administrator's unlock of a user, from every source). */
  clearLoginFailuresOf(key: string): Promise<void>;
  /** Drops counts whose last failure is before `before` (epoch ms); returns how many. */
  purgeLoginFailures(before: number): Promise<number>;
}

/** An authorization code (RFC 6749 §4.1.2), stored by the hash of its value only. */
export interface AuthorizationCodeRecord {
  codeHash: string;
  clientId: string;
  /** The user who logged in. */
  sub: string;
  redirectUri: string;
  /** RFC 7636 S256 challenge. */
  codeChallenge: string;
  scope: string | null;
  nonce: string | null;
  /** RFC 8707 resources asked for at /authorize. */
  resource: string[] | null;
  /** When the user authenticated (epoch seconds, OpenID Connect `auth_time`). */
  authTime: number;
  expiresAt: number;
  /** The sign-in session it came from (OpenID Connect `sid`). */
  sid: string | null;
}

export interface AuthorizationCodeStore {
  saveAuthorizationCode(code: AuthorizationCodeRecord, audit?: WithAudit): Promise<void>;
  /**
   * Uses a code once (atomically, across replicas). `first`: it had not been used, and now is.
   * Otherwise it was used before: `jti` is the token issued for it then, if any (RFC 6749 §4.1.2:
   * revoke what a replayed code gave). Undefined when there is no such code.
   */
  useAuthorizationCode(
    codeHash: string,
    now: number,
  ): Promise<
    { code: AuthorizationCodeRecord; first: boolean; jti: string | null; familyId: string | null } | undefined
  >;
  /** Remembers what a code gave (its access token, its refresh token family), to revoke them if the code is replayed. */
  setAuthorizationCodeJti(codeHash: string, jti: string, familyId: string | null): Promise<void>;
  /** The access tokens that codes of a sign-in session gave (to revoke at logout). */
  sessionCodeTokens(sid: string): Promise<string[]>;
  /** The access tokens that a client's codes for a user gave (to revoke with a consent). */
  clientCodeTokens(sub: string, clientId: string): Promise<string[]>;
}

/**
 * A refresh token family: every refresh token descended, by rotation, from one sign-in. Its
 * lifetime is fixed when it starts (rotation never extends it); reuse of a rotated token revokes it.
 */
export interface RefreshFamilyRecord {
  familyId: string;
  clientId: string;
  sub: string;
  scope: string | null;
  resource: string[] | null;
  authTime: number;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
  revokedReason: string | null;
  /** The sign-in session it belongs to: ending the session (logout) revokes it. */
  sid: string | null;
}

/** One refresh token of a family, stored by its hash, with the access token issued beside it. */
export interface RefreshTokenRecord {
  tokenHash: string;
  familyId: string;
  issuedAt: number;
  /** Idle expiry of this token (never past the family's). */
  expiresAt: number;
  /** When it was rotated (used); null while it is the family's current token. */
  usedAt: number | null;
  /** The access token issued with it, revoked with the family. */
  jti: string;
  jtiExpiresAt: number;
}

export interface RefreshTokenStore {
  /** Starts a family with its first token. */
  createRefreshFamily(family: RefreshFamilyRecord, first: RefreshTokenRecord, audit?: WithAudit): Promise<void>;
  /**
   * Uses a refresh token once (atomically, across replicas): `first` when it had not been used and
   * now is. Undefined when there is no such token.
   */
  useRefreshToken(
    tokenHash: string,
    now: number,
  ): Promise<{ token: RefreshTokenRecord; family: RefreshFamilyRecord; first: boolean } | undefined>;
  /** Adds the next token of a family (after a rotation). */
  addRefreshToken(token: RefreshTokenRecord): Promise<void>;
  /** The unexpired access tokens a family gave (to revoke with it). */
  liveRefreshFamilyTokens(familyId: string, now: number): Promise<{ jti: string; expiresAt: number }[]>;
  /** Revokes a family, with its audit events; false (and no events) when it was revoked already. */
  revokeRefreshFamily(familyId: string, now: number, reason: string, audit?: WithAudit): Promise<boolean>;
  getRefreshFamily(familyId: string): Promise<RefreshFamilyRecord | undefined>;
  /** A refresh token and its family, without using it (RFC 7009 revocation). */
  getRefreshToken(tokenHash: string): Promise<{ token: RefreshTokenRecord; family: RefreshFamilyRecord } | undefined>;
  /** Families of a subject (to revoke every one, e.g. at logout everywhere). */
  listRefreshFamilies(sub: string): Promise<RefreshFamilyRecord[]>;
  /** Families of a sign-in session (ended with it). */
  listSessionRefreshFamilies(sid: string): Promise<RefreshFamilyRecord[]>;
}

/** A user's sign-in session at the IdP (single sign-on; OpenID Connect `sid`). */
export interface SessionRecord {
  /** Public: in ID tokens and logout requests. The browser holds another value, stored hashed. */
  sid: string;
  sub: string;
  authTime: number;
  expiresAt: number;
  endedAt: number | null;
}

export interface SessionStore {
  /** `cookieHash`: the hash of the secret the browser's session cookie holds. */
  createSession(cookieHash: string, session: SessionRecord): Promise<void>;
  getSessionByCookie(cookieHash: string): Promise<SessionRecord | undefined>;
  getSession(sid: string): Promise<SessionRecord | undefined>;
  /** Ends a session, with its audit events; false (and no events) when it had ended already. */
  endSession(sid: string, now: number, audit?: WithAudit): Promise<boolean>;
}

/** A pushed authorization request (RFC 9126): the checked request, stored by the hash of its reference. */
export interface PushedRequestStore {
  savePushedRequest(refHash: string, clientId: string, request: unknown, expiresAt: number): Promise<void>;
  /** The request, once (atomically), while unexpired; undefined when unknown, used or expired. */
  usePushedRequest(refHash: string, now: number): Promise<{ clientId: string; request: unknown } | undefined>;
}

export type KeyState = 'next' | 'current' | 'retired' | 'revoked';

export interface SigningKeyRecord {
  kid: string;
  alg: SigningAlgorithm;
  state: KeyState;
  /** Public JWK (JSON), never with private members. */
  publicJwk: Record<string, unknown>;
  /** AES-256-GCM sealed PKCS#8 private key. */
  privateKeyEnc: string;
  createdAt: number;
  activatedAt: number | null;
  /** When it stopped signing (retired) or was revoked. */
  retiredAt: number | null;
  /** When the row may go: no token it signed can still be valid (retired and revoked keys). */
  removeAfter: number | null;
}

/** One state change of a signing key; applied only if the key is still in `from`. */
export interface KeyTransition {
  kid: string;
  from: KeyState;
  to: KeyState;
  /** Epoch seconds of the change. */
  at: number;
  /** For `retired` and `revoked`: when the row may be removed. */
  removeAfter?: number;
}

export interface KeyStore {
  /** Inserts a key; a second `current` or `next` key is refused with `storage_conflict`. */
  insertKey(key: SigningKeyRecord, audit?: WithAudit): Promise<void>;
  /** Keys in any state but `revoked`, newest first. */
  listPublishedKeys(): Promise<SigningKeyRecord[]>;
  /** Every key, revoked ones included, newest first. */
  listKeys(): Promise<SigningKeyRecord[]>;
  getCurrentKey(): Promise<SigningKeyRecord | undefined>;
  /**
   * Applies the transitions atomically: all of them, or none when any key is no longer in its
   * `from` state (another replica got there first). Returns whether they were applied.
   */
  transitionKeys(transitions: KeyTransition[], audit?: WithAudit): Promise<boolean>;
  /** Deletes retired and revoked keys whose `removeAfter` has passed, each with its `audit(kid)` events; returns their kids. */
  removeExpiredKeys(now: number, audit?: (kid: string) => AuditEvent[]): Promise<string[]>;
}

export interface LeaseStore {
  /**
   * Takes or renews the named lease for `holder` until `expiresAtMs`; true when `holder` holds it.
   * A lease held by another holder is taken only once it has expired.
   */
  tryLease(name: string, holder: string, expiresAtMs: number): Promise<boolean>;
}

export interface ReplayStore {
  /**
   * Records `id` as used until `expiresAt` (epoch seconds). Returns true the first time, false
   * when it was already used and has not expired. Atomic across replicas.
   */
  useOnce(id: string, expiresAt: number): Promise<boolean>;
}

export type FeedStream = 'revocations' | 'keys' | 'policy';

/** One entry of the feed log: a revocation (token, client, subject, key) or a key lifecycle event. */
export interface FeedEventRecord {
  /** Position in the log; the feed cursor. Commit order equals seq order. */
  seq: number;
  stream: FeedStream;
  /** Revocations: token | client | subject | key. Keys: key.added | key.activated | key.retired | key.removed | key.revoked. */
  kind: string;
  iss: string;
  /** jti, client_id, sub or kid. */
  ref: string;
  notBefore: number | null;
  /** Epoch seconds after which the entry is purged. */
  expiresAt: number;
  createdAt: number;
  data: Record<string, unknown> | null;
}

export interface FeedStore {
  /** Appends one entry; returns it with its seq. Throws when it could not be stored. */
  appendFeedEvent(event: Omit<FeedEventRecord, 'seq'>, audit?: WithAudit): Promise<FeedEventRecord>;
  /** Unexpired entries with seq > `after`, in seq order, at most `limit`. */
  listFeedEvents(stream: FeedStream | 'all', after: number, limit: number, now: number): Promise<FeedEventRecord[]>;
  /** The highest seq written so far (0 when none). */
  latestFeedSeq(): Promise<number>;
  /**
   * Calls `listener` after an entry was appended — by this process, or, on PostgreSQL, by any
   * replica (LISTEN/NOTIFY) — and after a lost notification channel is back. Returns an unsubscribe.
   */
  onFeedAppended(listener: () => void): () => void;
  /**
   * False while entries other replicas append could go unheard (PostgreSQL's LISTEN connection is
   * lost and being re-established); always true on SQLite.
   */
  feedNotificationsConnected(): boolean;
}

export interface RevocationStore {
  isTokenRevoked(issuer: string, jti: string): Promise<boolean>;
  /** The latest not-before time revoked for a client or subject, if any unexpired. */
  revocationNotBefore(issuer: string, kind: 'client' | 'subject', ref: string): Promise<number | undefined>;
}

/** A stored audit event with its place in the hash chain. */
export interface AuditRecord extends AuditEvent {
  seq: number;
  /** null for events written before the chain existed. */
  prevHash: string | null;
  hash: string | null;
}

export interface AuditFilter {
  type?: string;
  actor?: string;
  subject?: string;
  client_id?: string;
  outcome?: string;
  /** Events of one transaction (a Transaction Token's `txn`: exchanges and services' decisions). */
  txn?: string;
  /** RFC 3339 times, inclusive. */
  from?: string;
  to?: string;
  /** Cursor: events with seq greater than this. */
  after?: number;
  limit: number;
  /** The newest `limit` matches instead of the oldest (still returned oldest first). */
  newest?: boolean;
}

export interface AuditCheckpoint {
  seq: number;
  hash: string;
  time: string;
  kid: string;
  /** Compact JWS over {seq, hash, time, iss}, signed with the IdP's signing key. */
  signature: string;
}

/** A token that carries a Token Status List reference: what its bit is computed from. */
export interface TokenStatusRecord {
  listId: number;
  idx: number;
  jti: string;
  /** A token from a token exchange: the jti its chain started from (revoking that covers this). */
  originJti: string | null;
  clientId: string;
  sub: string;
  /** The key that signed it (a revoked key covers it). */
  kid: string;
  iat: number;
}

/** A status list (a shard of indices) as made: its size stays what it was when it was started. */
export interface StatusListRecord {
  listId: number;
  size: number;
  createdAt: number;
}

/** Token Status List (draft-ietf-oauth-status-list): indices, lists and what revocations cover. */
export interface StatusListStore {
  /**
   * Reserves `count` consecutive unused indices of the current list (starting a new list of
   * `listSize` when it has fewer left), serialized across replicas: no index is handed out twice.
   * `coverSeconds`: how long from now a token with one of them may still be valid; the list's
   * entries are purged after that (it is pushed back by each reservation).
   */
  allocateStatusIndices(
    count: number,
    listSize: number,
    coverSeconds: number,
  ): Promise<{ listId: number; first: number }>;
  getStatusList(listId: number): Promise<StatusListRecord | undefined>;
  /** Ids of the lists kept (those that may still cover an unexpired token), oldest first. */
  liveStatusLists(): Promise<number[]>;
  /**
   * The indices of the list whose tokens an unexpired revocation entry of `issuer` covers, except
   * entries of single tokens (their jti names the index: see `revokedTokenJtis`).
   */
  revokedStatusIndices(issuer: string, listId: number): Promise<number[]>;
  /** The jtis of every unexpired single-token revocation of `issuer`. */
  revokedTokenJtis(issuer: string): Promise<string[]>;
  /** The entries at these indices of a list (to confirm a jti is the one there). */
  tokenStatusesAt(listId: number, idxs: readonly number[]): Promise<{ idx: number; jti: string }[]>;
}

/** A receiver's Shared Signals stream (SSF §8.1.1), as stored. */
export interface SsfStreamRecord {
  streamId: string;
  /** The receiver: the client that created it, alone allowed to see and change it. */
  clientId: string;
  aud: string[];
  method: 'urn:ietf:rfc:8935' | 'urn:ietf:rfc:8936';
  /** Push: the receiver's URL. */
  endpointUrl: string | null;
  /** Push: the `Authorization` value the receiver asked for, sealed with the master key. */
  authorizationHeader: string | null;
  eventsRequested: string[];
  description: string | null;
  status: 'enabled' | 'paused' | 'disabled';
  reason: string | null;
  /** When the last verification event was asked for (SSF §8.1.4.2: min_verification_interval). */
  verifiedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** A SET waiting in a stream: pushed and not yet accepted, or polled and not yet acknowledged. */
export interface QueuedSetRecord {
  seq: number;
  streamId: string;
  jti: string;
  eventType: string;
  set: string;
  createdAt: number;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
}

export interface SsfStore {
  createSsfStream(stream: SsfStreamRecord, audit?: WithAudit): Promise<void>;
  getSsfStream(streamId: string): Promise<SsfStreamRecord | undefined>;
  /** Every stream, or a receiver's. */
  listSsfStreams(clientId?: string): Promise<SsfStreamRecord[]>;
  updateSsfStream(stream: SsfStreamRecord, audit?: WithAudit): Promise<boolean>;
  /** Deletes the stream, its subjects and its waiting SETs. */
  deleteSsfStream(streamId: string, audit?: WithAudit): Promise<boolean>;
  /** A subject added (`included`) or removed (not) by the receiver. */
  setSsfSubject(streamId: string, subject: string, included: boolean): Promise<void>;
  /** The subjects a stream added or removed: canonical subject → included. */
  ssfSubjects(streamId: string): Promise<Map<string, boolean>>;
  /**
   * Queues SETs and moves the transmitter's cursor (a setting) in one transaction: each audit
   * event becomes its SETs exactly once, whatever crashes.
   */
  enqueueSets(
    sets: readonly Omit<QueuedSetRecord, 'seq' | 'attempts' | 'lastError'>[],
    cursor: { name: string; value: string },
  ): Promise<void>;
  /** The oldest waiting SETs of a stream, in order. */
  queuedSets(streamId: string, limit: number): Promise<QueuedSetRecord[]>;
  countQueuedSets(streamId: string): Promise<number>;
  /** Removes the stream's SETs with these jtis (delivered, acknowledged, refused); returns how many went. */
  removeQueuedSets(streamId: string, jtis: readonly string[]): Promise<number>;
  /** A delivery attempt that failed: when to try again, and why. */
  deferQueuedSet(seq: number, attempts: number, nextAttemptAt: number, lastError: string): Promise<void>;
}

/** An external token issuer an administrator trusts (federated workload identity). */
export interface FederationIssuerRecord {
  name: string;
  /** `oidc`: an OpenID Connect / JWT issuer (Kubernetes, a CI system); `spiffe`: a SPIFFE trust domain (JWT-SVIDs). */
  kind: 'oidc' | 'spiffe';
  /** `oidc`: the exact `iss` of its tokens; `spiffe`: the trust domain's name. */
  issuer: string;
  /** Its JWKS (or SPIFFE bundle endpoint) URL; null when found by discovery or given inline. */
  jwksUri: string | null;
  /** `oidc`: jwks_uri from `<issuer>/.well-known/openid-configuration`. */
  discovery: boolean;
  /** Inline keys instead of a URL. */
  jwks: { keys: Record<string, unknown>[] } | null;
  /** JWS algorithms its tokens may use (asymmetric only). */
  algorithms: string[];
  /** Plain http allowed for its URLs (never by default). */
  allowHttp: boolean;
  /** Its URLs may point at loopback, private or link-local addresses (an in-cluster issuer). */
  allowPrivateAddresses: boolean;
  /** Each of its tokens authenticates once (its jti, or its hash, remembered until it expires). */
  singleUse: boolean;
  createdAt: number;
  updatedAt: number;
}

/** Maps tokens of a trusted issuer to a client: the first rule whose conditions all hold. */
export interface FederationRuleRecord {
  name: string;
  /** The issuer's `name`. */
  issuer: string;
  clientId: string;
  /** `sub` exactly, or a pattern where `*` stands for any run of characters. */
  subject: string;
  /** The `aud` the token must carry; null: this IdP's issuer identifier or token endpoint. */
  audience: string | null;
  /** JSON Pointer (RFC 6901) into the claims → the exact value, or a `*` pattern. */
  claims: Record<string, string>;
  createdAt: number;
}

export interface FederationStore {
  /** Creates or replaces an issuer (by name); a second issuer with the same kind and `issuer` → storage_conflict. */
  putFederationIssuer(issuer: FederationIssuerRecord, audit?: WithAudit): Promise<void>;
  /** Deletes an issuer and its rules. */
  deleteFederationIssuer(name: string, audit?: WithAudit): Promise<boolean>;
  listFederationIssuers(): Promise<FederationIssuerRecord[]>;
  putFederationRule(rule: FederationRuleRecord, audit?: WithAudit): Promise<void>;
  deleteFederationRule(name: string, audit?: WithAudit): Promise<boolean>;
  listFederationRules(): Promise<FederationRuleRecord[]>;
}

export interface AuditStore {
  /**
   * Appends events in one transaction, in order, each chained to its predecessor
   * (`chainHash`); appends are serialized across replicas. `tokenStatuses`: the status-list
   * entries of the tokens the events record, written in the same transaction.
   */
  appendAuditEvents(events: AuditEvent[], tokenStatuses?: readonly TokenStatusRecord[]): Promise<void>;
  /** Events matching the filter, oldest first, from the cursor on. */
  queryAuditEvents(filter: AuditFilter): Promise<AuditRecord[]>;
  /** The last chained event's seq and hash. */
  auditHead(): Promise<{ seq: number; hash: string } | undefined>;
  addAuditCheckpoint(checkpoint: AuditCheckpoint): Promise<void>;
  listAuditCheckpoints(): Promise<AuditCheckpoint[]>;
  /** The highest seq of an event recorded before `time` (RFC 3339), if any. */
  lastAuditSeqBefore(time: string): Promise<number | undefined>;
  /**
   * Deletes events with seq <= `throughSeq` and the checkpoints before it (the checkpoint at
   * `throughSeq` stays as the anchor of what remains); returns how many events went.
   */
  pruneAuditEvents(throughSeq: number): Promise<number>;
  /** The first event at or after `seq` (its seq and time), for finding a time's place in the chain. */
  auditAtOrAfter(seq: number): Promise<{ seq: number; time: string } | undefined>;
  /**
   * Counts of events of `types` with `afterSeq` < seq <= `throughSeq`, per time bucket (the first
   * `bucketChars` characters of their time: 19 a second, 16 a minute), type, outcome and client.
   */
  auditCounts(filter: {
    types: readonly string[];
    afterSeq: number;
    throughSeq: number;
    bucketChars: number;
  }): Promise<AuditCount[]>;
  /**
   * Calls `listener` with the rows this process appended (their seq and hashes as stored), after
   * their transaction has committed. Rows other replicas append are not announced; read them with
   * `queryAuditEvents`. Announcements may arrive out of seq order across transactions.
   */
  onAuditAppended(listener: (records: readonly AuditRecord[]) => void): void;
}

export interface AuditCount {
  bucket: string;
  type: string;
  outcome: string;
  client_id: string | null;
  n: number;
}

export type AlertSeverity = 'low' | 'medium' | 'high';

/** An alert raised by a detector over a run of audit events. */
export interface AlertRecord {
  /** Position in the alert list; the cursor of `GET /admin/alerts`. */
  id: number;
  time: string;
  detector: string;
  severity: AlertSeverity;
  /** What it is about: `client:orders`, `ip:10.0.0.7`, `actor:Service::"x"`. */
  key: string;
  summary: string;
  /** The audit events it is based on. */
  firstSeq: number;
  lastSeq: number;
  count: number;
  detail: Record<string, unknown>;
  /** The response taken (`locked client:orders until ...`), or null. */
  response: string | null;
  /** When an operator acknowledged it (RFC 3339), or null while it is open. */
  acknowledgedAt: string | null;
  /** Who acknowledged it. */
  acknowledgedBy: string | null;
}

export type NewAlert = Omit<AlertRecord, 'id' | 'acknowledgedAt' | 'acknowledgedBy'>;

export interface AlertStore {
  /** Stores the alert with the events `audit` makes of it (which know its id), in one transaction. */
  insertAlert(alert: NewAlert, audit?: (alert: AlertRecord) => AuditEvent[]): Promise<AlertRecord>;
  /** Alerts with id > `after`, oldest first; `state` open (not acknowledged) or acknowledged. */
  listAlerts(filter: {
    after?: number;
    detector?: string;
    state?: 'open' | 'acknowledged';
    limit: number;
  }): Promise<AlertRecord[]>;
  getAlert(id: number): Promise<AlertRecord | undefined>;
  /** Marks an open alert acknowledged; false when there is no such alert or it already was. */
  acknowledgeAlert(id: number, by: string, time: string, audit?: WithAudit): Promise<boolean>;
}

/** A sign-in session of the admin console (the browser holds the secret; storage its hash). */
export interface ConsoleSessionRecord {
  sid: string;
  /** Who signed in: `admin` (the admin bearer or a link it made) or `admin:<username>` (a user with the console role). */
  actor: string;
  /** The user's `sub` when a user signed in (checked on every request: enabled, still holding the role). */
  sub: string | null;
  createdAt: number;
  expiresAt: number;
  endedAt: number | null;
}

export interface ConsoleSessionStore {
  createConsoleSession(cookieHash: string, session: ConsoleSessionRecord, audit?: WithAudit): Promise<void>;
  getConsoleSession(cookieHash: string): Promise<ConsoleSessionRecord | undefined>;
  /** Ends a live session; false when it had ended already. */
  endConsoleSession(sid: string, now: number, audit?: WithAudit): Promise<boolean>;
}

/** A published policy bundle version and who published it. */
export interface PolicyVersionRecord extends PolicyBundle {
  actor: string;
  note: string | null;
}

export type PolicyVersionSummary = Omit<PolicyVersionRecord, 'schema' | 'policies' | 'entities'>;

export interface PolicyStore {
  /**
   * Stores `record` as version `record.version`, which must be the newest + 1 (optimistic
   * concurrency across replicas); false when another publish took that version first.
   */
  insertPolicyVersion(record: PolicyVersionRecord, audit?: WithAudit): Promise<boolean>;
  /** One version, or the newest (the active one) without `version`. */
  getPolicyVersion(version?: number): Promise<PolicyVersionRecord | undefined>;
  /** Newest first, without their contents. */
  listPolicyVersions(limit: number): Promise<PolicyVersionSummary[]>;
}

export interface SettingsStore {
  getSetting(name: string): Promise<string | undefined>;
  /** Sets only when absent; returns the value now stored. */
  setSettingIfAbsent(name: string, value: string): Promise<string>;
  setSetting(name: string, value: string): Promise<void>;
  /** Compare-and-set: replaces the value only if it is still `expected`; false otherwise. */
  replaceSetting(name: string, expected: string, value: string, audit?: WithAudit): Promise<boolean>;
}

/** Everything the IdP keeps. One implementation per database; both pass the same contract tests. */
export interface Storage
  extends ClientStore,
    UserStore,
    LoginFailureStore,
    AuthorizationCodeStore,
    RefreshTokenStore,
    PushedRequestStore,
    SessionStore,
    ConsoleSessionStore,
    ConsentStore,
    KeyStore,
    LeaseStore,
    ReplayStore,
    RevocationStore,
    FeedStore,
    AuditStore,
    AlertStore,
    PolicyStore,
    StatusListStore,
    SsfStore,
    FederationStore,
    SettingsStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Applies pending migrations; safe to run concurrently from several replicas. */
  migrate(): Promise<void>;
  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  /** Drops expired replay and revocation entries; returns how many rows went. */
  purgeExpired(now: number): Promise<number>;
  close(): Promise<void>;
}
