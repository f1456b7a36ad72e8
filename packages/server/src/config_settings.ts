import { SIGNING_ALGORITHMS } from '@latchkey/protocol';
import Type, { type Static, type TSchema } from 'typebox';

/**
 * Every setting of the IdP, declared once: its type, default, bounds and one line of
 * documentation (TypeBox schemas), and what Latchkey adds to them (`SettingMeta`). The env
 * variable is `LATCHKEY_` + the key in SNAKE_CASE, the `latchkey serve` flag `--` + kebab-case,
 * except for secrets, which have no flag (a flag shows in the process list). The reader
 * (`config.ts`), the flags (`latchkey serve`) and the table in docs/configuration.md are made from
 * this. Durations are in seconds.
 *
 * This module imports nothing heavy: the CLI loads it to declare flags without loading the IdP.
 */

/** Detectors whose alert names a client that a response may lock. */
export const LOCKABLE_DETECTORS = [
  'failed_auth_burst',
  'issuance_spike',
  'denied_decisions_burst',
  'assertion_replay',
  'identity_mismatch',
] as const;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** What a setting adds to its JSON Schema. */
export interface SettingMeta {
  /** The docs table's "meaning" column. */
  description: string;
  /** The docs table's "default" column when the default is computed or absent (`—`). */
  defaultDoc?: string;
  /** No flag, and never echoed in an error. */
  secret?: boolean;
  /** A file or folder: resolved against the working directory. */
  path?: boolean;
  /** Said of a value that fails `pattern` or `minLength`. */
  expected?: string;
  /** Stored lowercased. */
  lowercase?: boolean;
}

const int = (minimum: number, maximum: number, dflt: number | undefined, meta: SettingMeta) =>
  Type.Integer({ minimum, maximum, ...(dflt === undefined ? {} : { default: dflt }), ...meta });
const optional = <T extends TSchema>(schema: T) => Type.Optional(schema);
const str = (dflt: string | undefined, meta: SettingMeta & { pattern?: string; minLength?: number }) =>
  Type.String({ ...(dflt === undefined ? {} : { default: dflt }), ...meta });
const bool = (dflt: boolean, meta: SettingMeta) => Type.Boolean({ default: dflt, ...meta });
const list = <T extends TSchema>(items: T, meta: SettingMeta) => Type.Array(items, { default: [], ...meta });

const IP_OR_CIDR = '^[0-9a-fA-F.:]+(/\\d{1,3})?$';

export const SETTINGS = {
  port: int(0, 65535, 8443, { description: 'TCP port; 0 picks a free one' }),
  host: str('127.0.0.1', {
    pattern: '^[A-Za-z0-9.:-]+$',
    expected: 'a host name or address',
    description: 'interface to bind',
  }),
  issuer: optional(
    str(undefined, {
      defaultDoc: '`https://localhost:<port>`',
      description:
        'issuer identifier (RFC 8414 §2): an https origin without path, query or fragment; `http` only with TLS off',
    }),
  ),
  dataDir: str('./.latchkey', { path: true, description: 'SQLite database, master key file, local CA' }),
  databaseUrl: optional(
    str(undefined, {
      pattern: '^postgres(ql)?://',
      expected: 'a URL starting with postgres:// or postgresql://',
      description: '`postgres://…`: use PostgreSQL instead of SQLite (several replicas may share it)',
    }),
  ),
  adminToken: optional(
    str(undefined, {
      minLength: 32,
      secret: true,
      expected: 'at least 32 characters',
      defaultDoc: 'generated',
      description:
        'bootstrap admin bearer (≥ 32 characters). Unset at first start: a random one is generated, stored hashed and printed once. Set: replaces the stored hash',
    }),
  ),
  tls: bool(true, {
    description: 'serve HTTPS. `off` is refused unless the host is loopback or `LATCHKEY_ALLOW_INSECURE=on`',
  }),
  tlsCert: optional(
    str(undefined, {
      path: true,
      description:
        'PEM certificate chain for HTTPS, with `LATCHKEY_TLS_KEY`; without them the local CA in the data folder issues a 90-day certificate for localhost, 127.0.0.1, ::1, the host and the issuer host, and writes its own certificate to `<data>/ca.pem`',
    }),
  ),
  tlsKey: optional(str(undefined, { path: true, description: 'PEM private key for `LATCHKEY_TLS_CERT`' })),
  allowInsecure: bool(false, { description: 'allow plain HTTP on a non-loopback host (prints a warning)' }),
  masterKey: optional(
    str(undefined, {
      secret: true,
      defaultDoc: '`<data>/master.key`',
      description:
        '32 bytes (64 hex characters or base64) that seal private keys at rest (AES-256-GCM) and key the secret hash. Without it a 0600 file is created in the data folder. Replicas on one PostgreSQL must share it',
    }),
  ),
  signingAlg: Type.Enum(SIGNING_ALGORITHMS, {
    default: 'ES256',
    description: 'access-token algorithm (used when the first key is created)',
  }),
  accessTokenTtl: int(1, 86400, 300, { description: 'default access-token lifetime (RFC 9068 tokens, 5 minutes)' }),
  maxAccessTokenTtl: int(1, 86400, 3600, { description: 'largest `access_token_ttl` a registration may ask for' }),
  clockSkew: int(0, 300, 30, { description: 'tolerance when checking client assertions' }),
  maxActDepth: int(1, 16, 4, {
    description: 'most services a token exchange may nest in `act` (RFC 8693 §4.1); one more is refused',
  }),
  txnTokenTtl: int(5, 600, 60, {
    description: 'lifetime of Transaction Tokens in seconds (short: they are not bound to a sender)',
  }),
  statusList: bool(true, {
    description:
      'put a Token Status List reference (`status` claim) in access and Transaction Tokens, and publish the lists at `/sl/{n}`',
  }),
  statusListSize: int(1024, 16_777_216, 1_048_576, {
    description: 'indices per status list (1 bit each); a new list starts when one is used up',
  }),
  statusListTtl: int(1, 86400, 60, {
    description: '`ttl` of status list tokens: seconds a verifier may keep one before fetching it again',
  }),
  statusListLifetime: int(60, 604800, 900, {
    description:
      'seconds from `iat` to `exp` of a status list token (a verifier must not use it after; at least the ttl)',
  }),
  jwksMaxAge: int(0, 86400, 300, { description: '`Cache-Control: max-age` of `/jwks`' }),
  federationJwksCooldown: int(0, 300, 30, {
    description: "least seconds between two fetches of a trusted issuer's keys caused by an unknown `kid` (a rotation)",
  }),
  federationMaxAssertionLifetime: int(60, 7 * 86400, 86400, {
    description: 'longest a federated assertion (a platform token) may still be valid for; one valid longer is refused',
  }),
  ssfPushAttempts: int(1, 100, 8, {
    description:
      'Shared Signals push (RFC 8935): attempts at one SET before its stream is paused (SETs kept) and the failure reported',
  }),
  ssfRetryBase: int(1, 60, 2, {
    description: 'seconds before the second push attempt; the wait doubles after each failure (at most 300 s)',
  }),
  ssfMaxQueue: int(100, 1_000_000, 10_000, {
    description:
      'most SETs waiting in one stream (unacknowledged polls, a paused stream); newer ones are reported and not queued',
  }),
  ssfMaxStreams: int(1, 1000, 10, { description: 'most Shared Signals streams one receiver may hold' }),
  ssfPollWait: int(0, 60, 15, {
    description: 'seconds an RFC 8936 poll without `returnImmediately` waits for a SET (long polling)',
  }),
  ssfMinVerificationInterval: int(0, 3600, 10, {
    description:
      'SSF `min_verification_interval`: least seconds between two verification requests on a stream (429 sooner)',
  }),
  formBodyLimit: int(1024, 1024 * 1024, 16 * 1024, {
    description: 'cap on form bodies in bytes (token, introspection, revocation); larger → 413',
  }),
  jsonBodyLimit: int(1024, 4 * 1024 * 1024, 64 * 1024, {
    description: 'cap on JSON bodies in bytes (registration, admin API); larger → 413',
  }),
  requestTimeout: int(1, 3600, 30, {
    description:
      'seconds a request may take, connection to last body byte (headers within 10 s); slower ones are cut off with 408',
  }),
  auditAggregateWindow: int(1, 3600, 10, {
    description:
      'seconds over which repeated failures anyone can cause without credentials (a wrong admin bearer, a rate-limited, unknown-client or credential-less token request) from one source are counted into one audit event (`detail.aggregated`, `detail.count`) after the first',
  }),
  auditCheckpointFile: optional(
    str(undefined, {
      path: true,
      description:
        'file (outside the data folder) each signed audit checkpoint is appended to, fsynced, as it is made; `latchkey audit verify --checkpoints <file>` checks the chain against it',
    }),
  ),
  shutdownGrace: int(0, 600, 5, {
    description:
      'seconds between SIGTERM and closing: `/readyz` answers 503 `draining` at once while requests are still served, then in-flight requests finish and the audit is flushed',
  }),
  maxConnections: int(10, 1_000_000, 12_000, {
    description:
      'open connections at once; more are refused until some close (SSE feed streams count: keep it above `feedMaxStreams`)',
  }),
  authFailureLimit: int(1, 1_000_000, 20, {
    description:
      'failed client authentications per minute, per source address and per client id from one source, before that source gets 429; past it per client id from all sources together, further *failures* get 429 while a correct credential still succeeds',
  }),
  passwordMinLength: int(8, 64, 12, {
    description:
      "fewest characters of a user's password (NIST SP 800-63B: at least 8, 15 where the password is the only factor); no composition rules",
  }),
  passwordHashCost: int(14, 20, 17, {
    description:
      "scrypt cost of users' passwords as log2(N), with r = 8 and p = 1 (OWASP: 17, 128 MiB and about 0.2 s of one core per hash); hashes of another cost still verify and are redone at the next login",
  }),
  passwordBlocklistFile: optional(
    str(undefined, {
      path: true,
      description:
        'a file of further refused passwords, one per line, beside the bundled list of 30,000 common passwords from breaches',
    }),
  ),
  loginFreeFailures: int(1, 100, 5, {
    description:
      'failed sign-ins of one user from one address before that pair waits; each further failure doubles the wait (1 s, 2 s, 4 s …)',
  }),
  loginAccountFailures: int(1, 100_000, 20, {
    description:
      'failed sign-ins of one user from all addresses before browsers that never signed in as that user wait too (a browser that did is never held back)',
  }),
  loginSourceFailures: int(1, 1_000_000, 100, {
    description: 'failed sign-ins from one address across all users (password spraying) before that address waits',
  }),
  loginMaxDelay: int(1, 86_400, 900, {
    description: 'the longest wait a failed sign-in can cause, however many failures',
  }),
  loginFailureWindow: int(60, 7 * 86_400, 3600, {
    description: 'failures older than this are forgotten and counting starts again',
  }),
  refreshTokenLifetime: int(60, 365 * 86_400, 30 * 86_400, {
    description:
      'how long a sign-in can be kept alive by refresh tokens; rotation never extends it (the user signs in again after it)',
  }),
  refreshTokenIdleTtl: int(60, 365 * 86_400, 7 * 86_400, {
    description: 'a refresh token not used for this long expires (never later than the sign-in lifetime)',
  }),
  refreshReuseGrace: int(0, 60, 10, {
    description:
      "seconds after a rotation in which presenting the old refresh token again (a client's own retry) is refused without revoking the family; after them a reuse revokes every token of the sign-in and raises an alert",
  }),
  sessionLifetime: int(60, 30 * 86_400, 36_000, {
    description:
      'how long a sign-in session at the IdP lasts (single sign-on: later authorization requests from the same browser skip the password); the user signs in again after it',
  }),
  consoleSessionLifetime: int(60, 7 * 86_400, 28_800, {
    description:
      'how long a sign-in to the admin console (`/console/`) lasts; the operator signs in again after it (or signs out earlier)',
  }),
  clientCacheTtl: int(0, 300, 5, {
    description:
      'how long a replica serves a client registration from memory; changes made through the same replica apply at once; a client revoked or deleted at another replica as soon as its feed event arrives; other changes made at another replica within this bound; `0` disables',
  }),
  keyRotationInterval: int(2, 366 * 86400, 86400, {
    description: 'how long a signing key signs before the next one takes over ([keys.md](keys.md))',
  }),
  keyAnnounceWindow: optional(
    int(0, 30 * 86400, undefined, {
      defaultDoc: 'JWKS max-age + 2 × check interval',
      description: 'least time a next key is published before it signs; that sum is also the floor',
    }),
  ),
  keyCheckInterval: int(1, 3600, 30, {
    description: 'how often each replica reloads keys and the lease holder runs the schedule',
  }),
  feedHeartbeat: int(1, 3600, 15, {
    description: 'seconds between keep-alive comments on feed streams ([feeds.md](feeds.md))',
  }),
  feedMaxStreamsPerClient: int(1, 100_000, 256, {
    description:
      'open feed streams per client on this replica (then 429): one per replica of a service, so a fleet of up to this many replicas sharing one client identity each hold their own',
  }),
  feedMaxStreams: int(1, 1_000_000, 10_000, {
    description:
      'open feed streams per replica (then 429); each holds about 50–60 KiB of resident memory (docs/benchmarks.md)',
  }),
  feedMaxPage: int(1, 10_000, 1000, { description: 'most entries in one feed page' }),
  feedMaxStreamAge: int(0, 7 * 86400, 900, {
    description:
      'seconds after which a feed stream is ended (each between 75% and 100% of it) so its subscriber reconnects through the load balancer and streams spread over replicas started since; it resumes from its cursor, nothing is lost; 0: never',
  }),
  feedStallTimeout: int(1, 3600, 30, {
    description: "seconds a stream's socket may stay full before its consumer is disconnected",
  }),
  auditCheckpointInterval: int(1, 86400, 300, {
    description: 'seconds between signed checkpoints of the audit chain ([audit.md](audit.md))',
  }),
  auditRetention: int(0, 100 * 366 * 86400, 0, {
    description: 'seconds to keep audit events; 0 keeps them forever; pruning leaves a signed anchor',
  }),
  detectInterval: int(1, 3600, 1, {
    description: 'seconds between detector passes (each local commit also triggers one)',
  }),
  detectAuthFailures: int(1, 1_000_000, 10, {
    description: 'failed authentications per client or source address within the window that raise an alert',
  }),
  detectAuthWindow: int(1, 86400, 60, { description: 'window for `LATCHKEY_DETECT_AUTH_FAILURES`' }),
  detectDenials: int(1, 1_000_000, 20, {
    description: 'denied decisions per principal across services within the window that raise an alert',
  }),
  detectDenialWindow: int(1, 86400, 60, { description: 'window for `LATCHKEY_DETECT_DENIALS`' }),
  detectIssuanceFactor: int(2, 1_000_000, 10, {
    description: "a client's tokens in one window above this many times its own baseline raise an alert",
  }),
  detectIssuanceWindow: int(1, 86400, 60, { description: 'length of the issuance window the baseline is built from' }),
  detectIssuanceMin: int(1, 100_000_000, 100, {
    description: 'tokens in one window below which issuance never alerts, whatever the baseline',
  }),
  detectSprayUsers: int(2, 10_000, 10, {
    description: 'password_spraying: failed sign-ins for this many different users from one address within the window',
  }),
  detectSprayWindow: int(10, 86_400, 600, { description: 'password_spraying: the window' }),
  detectStuffingFailures: int(8, 1_000_000, 100, {
    description:
      'credential_stuffing: this many failed sign-ins within the window, over at least a quarter as many users and addresses, fewer than one in ten succeeding',
  }),
  detectStuffingWindow: int(10, 86_400, 600, { description: 'credential_stuffing: the window' }),
  detectNewSourceLogins: bool(true, {
    description:
      'new_source_login: alert when a user signs in from an address not among their last ten, in a browser new to them',
  }),
  alertCooldown: int(0, 86400, 300, {
    description: 'seconds before the same detector alerts about the same thing again',
  }),
  alertWebhooks: list(Type.String({ minLength: 1 }), {
    description:
      'comma-separated URLs that get each alert as a signed POST: https (http only to loopback or with `LATCHKEY_ALLOW_INSECURE=on`)',
  }),
  alertWebhookSecret: optional(
    str(undefined, {
      minLength: 32,
      secret: true,
      expected: 'at least 32 characters',
      description: 'HMAC-SHA256 key for `Latchkey-Signature` (≥ 32 characters; required with webhooks)',
    }),
  ),
  alertWebhookAttempts: int(1, 20, 6, { description: 'attempts per webhook delivery, backoff 1, 2, 4 … s' }),
  alertLock: list(Type.Enum(LOCKABLE_DETECTORS), {
    description: `comma-separated detectors whose alerts lock the client involved (${LOCKABLE_DETECTORS.map((d) => `\`${d}\``).join(', ')})`,
  }),
  alertLockSeconds: int(1, 366 * 86400, 900, { description: 'how long such a lock lasts' }),
  trustDomain: optional(
    // SPIFFE ID §2.1: a trust domain is lowercase letters, digits, dots, dashes and underscores.
    str(undefined, {
      pattern: '^[a-z0-9._-]{1,255}$',
      expected: 'lowercase letters, digits, ".", "-" and "_" only',
      defaultDoc: "the issuer's host name",
      description: 'SPIFFE trust domain of workload certificates',
    }),
  ),
  // Seconds, not minutes, are allowed so that tests can watch certificates rotate.
  workloadCertTtl: int(5, 30 * 86400, 3600, { description: 'lifetime of workload certificates (at least 5)' }),
  caCert: optional(
    str(undefined, {
      path: true,
      description:
        "PEM file of an operator-provided intermediate CA (and any further intermediates) to sign workload certificates with instead of Latchkey's own root, with `LATCHKEY_CA_KEY` ([mtls.md](mtls.md#your-own-root-the-idp-as-an-intermediate))",
    }),
  ),
  caKey: optional(
    str(undefined, { path: true, description: "PEM file of that CA's private key, PKCS#8 or SEC1/PKCS#1" }),
  ),
  caBundle: optional(
    str(undefined, {
      path: true,
      defaultDoc: 'the self-signed certificates of `LATCHKEY_CA_CERT`',
      description: 'PEM file of the root(s) served as the trust bundle with an operator CA',
    }),
  ),
  caRotateAnnounce: optional(
    int(0, 366 * 86400, undefined, {
      defaultDoc: '`LATCHKEY_WORKLOAD_CERT_TTL`',
      description: 'seconds a new root from `latchkey ca rotate` is in the bundle before it signs',
    }),
  ),
  trustedProxies: list(Type.String({ pattern: IP_OR_CIDR }), {
    expected: 'an IP address or CIDR',
    description:
      'comma-separated IPs or CIDRs of TLS-terminating proxies whose `X-Forwarded-For` and client-certificate header are believed',
  }),
  outboundAllow: list(Type.String({ pattern: '^([0-9a-fA-F.:]+(/\\d{1,3})?|[A-Za-z0-9.-]{1,253})$' }), {
    expected: 'a host name, IP address or CIDR',
    description:
      "comma-separated host names, IPs or CIDRs that a client's `jwks_uri` may reach although they are loopback, private or link-local (by default such addresses are refused before connecting; see [security.md](security.md))",
  }),
  outboundCaFile: optional(
    str(undefined, {
      path: true,
      description:
        'PEM file of CA certificates the IdP trusts, beside the system roots, for the HTTPS servers it calls: Shared Signals receivers, federated issuers, client `jwks_uri`s',
    }),
  ),
  clientCertHeader: str('client-cert', {
    pattern: '^[a-zA-Z0-9-]{1,64}$',
    lowercase: true,
    expected: 'a header name',
    description:
      'header in which a trusted proxy forwards the client certificate (RFC 9440 `:base64:`, or URL-encoded PEM)',
  }),
  policyBodyLimit: int(64 * 1024, 256 * 1024 * 1024, 16 * 1024 * 1024, {
    description: 'largest policy bundle the admin API accepts, in bytes',
  }),
  policyValidationTimeout: int(1, 600, 10, {
    description:
      "seconds a bundle's validation (run in a worker thread, off the event loop) may take before it is refused and the worker replaced",
  }),
  accessLog: bool(false, {
    description:
      'one `request` line per request at info level (method, path without query, status, ms, ip). Off by default: the audit trail already records every token, failure and change with its request id and source address, and the line costs about a tenth of issuance throughput (docs/benchmarks.md)',
  }),
  logLevel: Type.Enum(LOG_LEVELS, {
    default: 'info',
    description: 'pino level; logs never contain tokens, secrets or assertions',
  }),
};

export type SettingKey = keyof typeof SETTINGS;

/** The JSON Schema of the whole configuration. */
export const ConfigSchema = Type.Object(SETTINGS);

/** The validated configuration (`loadConfig`): every setting, defaults applied, frozen. */
export type Config = Static<typeof ConfigSchema> & {
  issuer: string;
  keyAnnounceWindow: number;
};

/** The JSON Schema members a setting uses, with `SettingMeta`: what the reader, flags and docs read. */
export type SettingSchema = SettingMeta & {
  type?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  pattern?: string;
  enum?: string[];
  items?: SettingSchema;
};

export const settingSchema = (key: SettingKey): SettingSchema => SETTINGS[key] as unknown as SettingSchema;

/** `LATCHKEY_` + the key in SNAKE_CASE. */
export const envName = (key: SettingKey): string => `LATCHKEY_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

/** `--` + the key in kebab-case; none for secrets. */
export const flagName = (key: SettingKey): string | undefined =>
  settingSchema(key).secret ? undefined : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
