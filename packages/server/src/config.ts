import { relative, resolve } from 'node:path';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '@latchkey/protocol';
import { LatchkeyError } from './errors.ts';

/** Every configuration key, its default, and what it means. Durations are in seconds. */
export interface Config {
  /** TCP port to listen on (LATCHKEY_PORT). 0 picks a free port. */
  port: number;
  /** Interface to bind (LATCHKEY_HOST). */
  host: string;
  /** Issuer identifier (LATCHKEY_ISSUER); default `https://localhost:<port>` (http when TLS is off). */
  issuer: string;
  /** Folder for the embedded database, key files and the local CA (LATCHKEY_DATA_DIR). */
  dataDir: string;
  /** PostgreSQL URL (LATCHKEY_DATABASE_URL); when unset, SQLite in dataDir is used. */
  databaseUrl: string | undefined;
  /** Bootstrap admin bearer (LATCHKEY_ADMIN_TOKEN); generated and printed once when unset at first start. */
  adminToken: string | undefined;
  /** Serve HTTPS (LATCHKEY_TLS=on|off). */
  tls: boolean;
  /** PEM certificate file for HTTPS (LATCHKEY_TLS_CERT); default: issued by the local CA. */
  tlsCert: string | undefined;
  /** PEM private key file for HTTPS (LATCHKEY_TLS_KEY). */
  tlsKey: string | undefined;
  /** Allow plain HTTP on a non-loopback host (LATCHKEY_ALLOW_INSECURE=1). */
  allowInsecure: boolean;
  /** 32-byte key (base64 or hex) that encrypts private keys at rest (LATCHKEY_MASTER_KEY); default: `<dataDir>/master.key`. */
  masterKey: string | undefined;
  /** Access-token signing algorithm (LATCHKEY_SIGNING_ALG). */
  signingAlg: SigningAlgorithm;
  /** Default access-token lifetime (LATCHKEY_ACCESS_TOKEN_TTL). */
  accessTokenTtl: number;
  /** Longest lifetime a client registration may ask for (LATCHKEY_MAX_ACCESS_TOKEN_TTL). */
  maxAccessTokenTtl: number;
  /** Allowed clock skew when checking assertions (LATCHKEY_CLOCK_SKEW). */
  clockSkew: number;
  /** `max-age` the JWKS response advertises (LATCHKEY_JWKS_MAX_AGE). */
  jwksMaxAge: number;
  /** Cap on form request bodies in bytes (LATCHKEY_FORM_BODY_LIMIT). */
  formBodyLimit: number;
  /** Cap on JSON request bodies in bytes (LATCHKEY_JSON_BODY_LIMIT). */
  jsonBodyLimit: number;
  /** Seconds a request may take from connection to last body byte before it is cut off (LATCHKEY_REQUEST_TIMEOUT). */
  requestTimeout: number;
  /** Seconds over which repeated anonymous failures from one source are counted into one audit event (LATCHKEY_AUDIT_AGGREGATE_WINDOW). */
  auditAggregateWindow: number;
  /** File each signed audit checkpoint is appended to as it is made; must be outside the data folder (LATCHKEY_AUDIT_CHECKPOINT_FILE). */
  auditCheckpointFile: string | undefined;
  /** Seconds between SIGTERM and closing, while /readyz says draining and requests are still served (LATCHKEY_SHUTDOWN_GRACE). */
  shutdownGrace: number;
  /** Open connections accepted at once; more are refused until some close (LATCHKEY_MAX_CONNECTIONS). */
  maxConnections: number;
  /** Failed client authentications allowed per minute per source address and per client and source; past it per client, failures only are slowed (LATCHKEY_AUTH_FAILURE_LIMIT). */
  authFailureLimit: number;
  /** How long a replica may serve a client registration from memory before re-reading it (LATCHKEY_CLIENT_CACHE_TTL); 0 disables. */
  clientCacheTtl: number;
  /** How long a signing key signs before the next one takes over (LATCHKEY_KEY_ROTATION_INTERVAL). */
  keyRotationInterval: number;
  /**
   * Least time a `next` key is published before it may sign (LATCHKEY_KEY_ANNOUNCE_WINDOW); at
   * least the JWKS max-age plus two check intervals, which is also its default.
   */
  keyAnnounceWindow: number;
  /** How often each replica reloads keys and the lease holder runs the schedule (LATCHKEY_KEY_CHECK_INTERVAL). */
  keyCheckInterval: number;
  /** Seconds between keep-alive comments on feed streams (LATCHKEY_FEED_HEARTBEAT). */
  feedHeartbeat: number;
  /** Open feed streams allowed per client (LATCHKEY_FEED_MAX_STREAMS_PER_CLIENT). */
  feedMaxStreamsPerClient: number;
  /** Open feed streams allowed per replica (LATCHKEY_FEED_MAX_STREAMS). */
  feedMaxStreams: number;
  /** Most entries in one feed page (LATCHKEY_FEED_MAX_PAGE). */
  feedMaxPage: number;
  /** Seconds a stream's socket may stay full before its consumer counts as stalled and is disconnected (LATCHKEY_FEED_STALL_TIMEOUT). */
  feedStallTimeout: number;
  /** Seconds between signed checkpoints of the audit chain's head (LATCHKEY_AUDIT_CHECKPOINT_INTERVAL). */
  auditCheckpointInterval: number;
  /** Seconds to keep audit events; 0 keeps them forever (LATCHKEY_AUDIT_RETENTION). Pruning is checkpointed first. */
  auditRetention: number;
  /** Seconds between detector passes over new audit events, besides the nudge after each local commit (LATCHKEY_DETECT_INTERVAL). */
  detectInterval: number;
  /** Failed authentications per client or source address within the window that raise an alert (LATCHKEY_DETECT_AUTH_FAILURES). */
  detectAuthFailures: number;
  /** Window in seconds for failed authentications (LATCHKEY_DETECT_AUTH_WINDOW). */
  detectAuthWindow: number;
  /** Denied permission decisions for one principal within the window that raise an alert (LATCHKEY_DETECT_DENIALS). */
  detectDenials: number;
  /** Window in seconds for denied decisions (LATCHKEY_DETECT_DENIAL_WINDOW). */
  detectDenialWindow: number;
  /** A client's tokens in one window above this many times its own baseline raise an alert (LATCHKEY_DETECT_ISSUANCE_FACTOR). */
  detectIssuanceFactor: number;
  /** Length in seconds of the issuance window the baseline is built from (LATCHKEY_DETECT_ISSUANCE_WINDOW). */
  detectIssuanceWindow: number;
  /** Tokens in one window below which issuance never alerts, whatever the baseline (LATCHKEY_DETECT_ISSUANCE_MIN). */
  detectIssuanceMin: number;
  /** Seconds during which a detector does not raise a second alert about the same thing (LATCHKEY_ALERT_COOLDOWN). */
  alertCooldown: number;
  /** Comma-separated URLs that receive each alert as a signed POST (LATCHKEY_ALERT_WEBHOOKS). */
  alertWebhooks: string[];
  /** HMAC-SHA256 key for the `Latchkey-Signature` header of webhooks, at least 32 characters (LATCHKEY_ALERT_WEBHOOK_SECRET). */
  alertWebhookSecret: string | undefined;
  /** Attempts per webhook delivery, with exponential backoff from one second (LATCHKEY_ALERT_WEBHOOK_ATTEMPTS). */
  alertWebhookAttempts: number;
  /** Comma-separated detectors whose alerts lock the client involved (LATCHKEY_ALERT_LOCK), e.g. `failed_auth_burst,assertion_replay`. */
  alertLock: string[];
  /** Seconds a response lock lasts (LATCHKEY_ALERT_LOCK_SECONDS). */
  alertLockSeconds: number;
  /** SPIFFE trust domain of workload certificates (LATCHKEY_TRUST_DOMAIN); default: the issuer's host name. */
  trustDomain: string | undefined;
  /** Lifetime of workload certificates in seconds (LATCHKEY_WORKLOAD_CERT_TTL). */
  workloadCertTtl: number;
  /**
   * PEM file of an operator-provided CA certificate for workload certificates (LATCHKEY_CA_CERT):
   * an intermediate signed by the operator's root, followed by any further intermediates.
   */
  caCert: string | undefined;
  /** PEM file of that CA's private key, PKCS#8 or SEC1/PKCS#1 (LATCHKEY_CA_KEY). */
  caKey: string | undefined;
  /** PEM file of the trust bundle to serve with an operator-provided CA: the operator's root(s) (LATCHKEY_CA_BUNDLE). */
  caBundle: string | undefined;
  /** Seconds a new root from `latchkey ca rotate` sits in the trust bundle before it signs (LATCHKEY_CA_ROTATE_ANNOUNCE); default: the certificate lifetime. */
  caRotateAnnounce: number | undefined;
  /** Addresses or CIDRs of TLS-terminating proxies whose forwarded headers are believed (LATCHKEY_TRUSTED_PROXIES). */
  trustedProxies: string[];
  /** Hosts, addresses or CIDRs a client's jwks_uri may reach although loopback, private or link-local (LATCHKEY_OUTBOUND_ALLOW). */
  outboundAllow: string[];
  /** Header in which a trusted proxy forwards the client certificate (LATCHKEY_CLIENT_CERT_HEADER), RFC 9440 `Client-Cert` by default. */
  clientCertHeader: string;
  /** Largest policy bundle accepted by the admin API, in bytes (LATCHKEY_POLICY_BODY_LIMIT). */
  policyBodyLimit: number;
  /** Seconds a policy bundle's validation may take, off the event loop, before it is refused (LATCHKEY_POLICY_VALIDATION_TIMEOUT). */
  policyValidationTimeout: number;
  /** Log level (LATCHKEY_LOG_LEVEL): fatal, error, warn, info, debug, trace, silent. */
  logLevel: string;
}

export const defaults: Readonly<Omit<Config, 'issuer'>> = Object.freeze({
  port: 8443,
  host: '127.0.0.1',
  dataDir: './.latchkey',
  databaseUrl: undefined,
  adminToken: undefined,
  tls: true,
  tlsCert: undefined,
  tlsKey: undefined,
  allowInsecure: false,
  masterKey: undefined,
  signingAlg: 'ES256',
  accessTokenTtl: 300,
  maxAccessTokenTtl: 3600,
  clockSkew: 30,
  jwksMaxAge: 300,
  formBodyLimit: 16 * 1024,
  jsonBodyLimit: 64 * 1024,
  requestTimeout: 30,
  auditAggregateWindow: 10,
  auditCheckpointFile: undefined,
  shutdownGrace: 5,
  maxConnections: 10_000,
  authFailureLimit: 20,
  clientCacheTtl: 5,
  keyRotationInterval: 86400,
  keyAnnounceWindow: 0,
  keyCheckInterval: 30,
  feedHeartbeat: 15,
  feedMaxStreamsPerClient: 8,
  feedMaxStreams: 1000,
  feedMaxPage: 1000,
  feedStallTimeout: 30,
  auditCheckpointInterval: 300,
  auditRetention: 0,
  detectInterval: 1,
  detectAuthFailures: 10,
  detectAuthWindow: 60,
  detectDenials: 20,
  detectDenialWindow: 60,
  detectIssuanceFactor: 10,
  detectIssuanceWindow: 60,
  detectIssuanceMin: 100,
  alertCooldown: 300,
  alertWebhooks: [],
  alertWebhookSecret: undefined,
  alertWebhookAttempts: 6,
  alertLock: [],
  alertLockSeconds: 900,
  policyBodyLimit: 16 * 1024 * 1024,
  policyValidationTimeout: 10,
  trustDomain: undefined,
  workloadCertTtl: 3600,
  caCert: undefined,
  caKey: undefined,
  caBundle: undefined,
  caRotateAnnounce: undefined,
  trustedProxies: [],
  outboundAllow: [],
  clientCertHeader: 'client-cert',
  logLevel: 'info',
});

const ENV: Record<string, keyof Config> = {
  LATCHKEY_PORT: 'port',
  LATCHKEY_HOST: 'host',
  LATCHKEY_ISSUER: 'issuer',
  LATCHKEY_DATA_DIR: 'dataDir',
  LATCHKEY_DATABASE_URL: 'databaseUrl',
  LATCHKEY_ADMIN_TOKEN: 'adminToken',
  LATCHKEY_TLS: 'tls',
  LATCHKEY_TLS_CERT: 'tlsCert',
  LATCHKEY_TLS_KEY: 'tlsKey',
  LATCHKEY_ALLOW_INSECURE: 'allowInsecure',
  LATCHKEY_MASTER_KEY: 'masterKey',
  LATCHKEY_SIGNING_ALG: 'signingAlg',
  LATCHKEY_ACCESS_TOKEN_TTL: 'accessTokenTtl',
  LATCHKEY_MAX_ACCESS_TOKEN_TTL: 'maxAccessTokenTtl',
  LATCHKEY_CLOCK_SKEW: 'clockSkew',
  LATCHKEY_JWKS_MAX_AGE: 'jwksMaxAge',
  LATCHKEY_FORM_BODY_LIMIT: 'formBodyLimit',
  LATCHKEY_JSON_BODY_LIMIT: 'jsonBodyLimit',
  LATCHKEY_REQUEST_TIMEOUT: 'requestTimeout',
  LATCHKEY_AUDIT_AGGREGATE_WINDOW: 'auditAggregateWindow',
  LATCHKEY_AUDIT_CHECKPOINT_FILE: 'auditCheckpointFile',
  LATCHKEY_SHUTDOWN_GRACE: 'shutdownGrace',
  LATCHKEY_MAX_CONNECTIONS: 'maxConnections',
  LATCHKEY_AUTH_FAILURE_LIMIT: 'authFailureLimit',
  LATCHKEY_CLIENT_CACHE_TTL: 'clientCacheTtl',
  LATCHKEY_KEY_ROTATION_INTERVAL: 'keyRotationInterval',
  LATCHKEY_KEY_ANNOUNCE_WINDOW: 'keyAnnounceWindow',
  LATCHKEY_KEY_CHECK_INTERVAL: 'keyCheckInterval',
  LATCHKEY_FEED_HEARTBEAT: 'feedHeartbeat',
  LATCHKEY_FEED_MAX_STREAMS_PER_CLIENT: 'feedMaxStreamsPerClient',
  LATCHKEY_FEED_MAX_STREAMS: 'feedMaxStreams',
  LATCHKEY_FEED_MAX_PAGE: 'feedMaxPage',
  LATCHKEY_FEED_STALL_TIMEOUT: 'feedStallTimeout',
  LATCHKEY_AUDIT_CHECKPOINT_INTERVAL: 'auditCheckpointInterval',
  LATCHKEY_AUDIT_RETENTION: 'auditRetention',
  LATCHKEY_DETECT_INTERVAL: 'detectInterval',
  LATCHKEY_DETECT_AUTH_FAILURES: 'detectAuthFailures',
  LATCHKEY_DETECT_AUTH_WINDOW: 'detectAuthWindow',
  LATCHKEY_DETECT_DENIALS: 'detectDenials',
  LATCHKEY_DETECT_DENIAL_WINDOW: 'detectDenialWindow',
  LATCHKEY_DETECT_ISSUANCE_FACTOR: 'detectIssuanceFactor',
  LATCHKEY_DETECT_ISSUANCE_WINDOW: 'detectIssuanceWindow',
  LATCHKEY_DETECT_ISSUANCE_MIN: 'detectIssuanceMin',
  LATCHKEY_ALERT_COOLDOWN: 'alertCooldown',
  LATCHKEY_ALERT_WEBHOOKS: 'alertWebhooks',
  LATCHKEY_ALERT_WEBHOOK_SECRET: 'alertWebhookSecret',
  LATCHKEY_ALERT_WEBHOOK_ATTEMPTS: 'alertWebhookAttempts',
  LATCHKEY_ALERT_LOCK: 'alertLock',
  LATCHKEY_ALERT_LOCK_SECONDS: 'alertLockSeconds',
  LATCHKEY_POLICY_BODY_LIMIT: 'policyBodyLimit',
  LATCHKEY_POLICY_VALIDATION_TIMEOUT: 'policyValidationTimeout',
  LATCHKEY_TRUST_DOMAIN: 'trustDomain',
  LATCHKEY_WORKLOAD_CERT_TTL: 'workloadCertTtl',
  LATCHKEY_CA_CERT: 'caCert',
  LATCHKEY_CA_KEY: 'caKey',
  LATCHKEY_CA_BUNDLE: 'caBundle',
  LATCHKEY_CA_ROTATE_ANNOUNCE: 'caRotateAnnounce',
  LATCHKEY_TRUSTED_PROXIES: 'trustedProxies',
  LATCHKEY_OUTBOUND_ALLOW: 'outboundAllow',
  LATCHKEY_CLIENT_CERT_HEADER: 'clientCertHeader',
  LATCHKEY_LOG_LEVEL: 'logLevel',
};

/** Raw configuration input: strings from the environment or flags, or typed values from code. */
export type ConfigInput = Partial<Record<keyof Config, string | number | boolean | string[] | undefined>>;

/** Detectors whose alert names a client that a response may lock. */
export const LOCKABLE_DETECTORS = [
  'failed_auth_burst',
  'issuance_spike',
  'denied_decisions_burst',
  'assertion_replay',
  'identity_mismatch',
] as const;

export const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

/** Reads LATCHKEY_* variables; unknown LATCHKEY_* names are reported as errors by {@link loadConfig}. */
export function configFromEnv(env: NodeJS.ProcessEnv): { input: ConfigInput; unknown: string[] } {
  const input: ConfigInput = {};
  const unknown: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('LATCHKEY_') || value === undefined) continue;
    const key = ENV[name];
    if (key) input[key] = value;
    else if (!name.startsWith('LATCHKEY_TEST_')) unknown.push(name);
  }
  return { input, unknown };
}

function envName(key: keyof Config): string {
  return Object.entries(ENV).find(([, k]) => k === key)?.[0] ?? key;
}

/**
 * Validates configuration once at start. Every bad value gets its own line in the thrown
 * error; unknown keys are rejected. The result is frozen.
 */
export function loadConfig(input: ConfigInput, unknownKeys: string[] = []): Readonly<Config> {
  const problems: string[] = unknownKeys.map((k) => `${k}: unknown setting`);
  const known = new Set<string>([...Object.keys(defaults), 'issuer']);
  for (const key of Object.keys(input)) if (!known.has(key)) problems.push(`${key}: unknown setting`);

  const int = (key: keyof Config, min: number, max: number): number => {
    const raw = input[key];
    const fallback = (defaults as Record<string, unknown>)[key] as number;
    if (raw === undefined || raw === '') return fallback;
    const n = typeof raw === 'number' ? raw : /^\d+$/.test(String(raw)) ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${envName(key)}: must be an integer from ${min} to ${max} (got ${JSON.stringify(String(raw))})`);
      return fallback;
    }
    return n;
  };
  const str = (key: keyof Config): string | undefined => {
    const raw = input[key];
    return raw === undefined || raw === '' ? undefined : String(raw);
  };
  const bool = (key: keyof Config, truthy: string[], falsy: string[], fallback: boolean): boolean => {
    const raw = input[key];
    if (raw === undefined || raw === '') return fallback;
    if (typeof raw === 'boolean') return raw;
    const v = String(raw).toLowerCase();
    if (truthy.includes(v)) return true;
    if (falsy.includes(v)) return false;
    problems.push(
      `${envName(key)}: must be one of ${[...truthy, ...falsy].join(', ')} (got ${JSON.stringify(String(raw))})`,
    );
    return fallback;
  };

  const list = (key: keyof Config): string[] => {
    const raw = input[key];
    if (raw === undefined || raw === '') return [];
    return (Array.isArray(raw) ? raw : String(raw).split(',')).map((s) => s.trim()).filter((s) => s.length > 0);
  };

  const port = int('port', 0, 65535);
  const host = str('host') ?? defaults.host;
  if (!/^[A-Za-z0-9.:-]+$/.test(host))
    problems.push(`LATCHKEY_HOST: not a host name or address (got ${JSON.stringify(host)})`);
  const tls = bool('tls', ['on', 'true', '1', 'yes'], ['off', 'false', '0', 'no'], true);
  const allowInsecure = bool('allowInsecure', ['1', 'true', 'yes', 'on'], ['0', 'false', 'no', 'off'], false);
  if (!tls && !allowInsecure && !LOOPBACK_HOSTS.has(host)) {
    problems.push(
      `LATCHKEY_TLS: off is refused on non-loopback host ${host}; set LATCHKEY_ALLOW_INSECURE=1 to force it`,
    );
  }
  const tlsCert = str('tlsCert');
  const tlsKey = str('tlsKey');
  if ((tlsCert === undefined) !== (tlsKey === undefined))
    problems.push('LATCHKEY_TLS_CERT and LATCHKEY_TLS_KEY: give both or neither');

  const issuerDefault = `${tls ? 'https' : 'http'}://localhost${port === 443 && tls ? '' : `:${port}`}`;
  const issuer = str('issuer') ?? issuerDefault;
  try {
    // RFC 8414 §2: the issuer is an https URL with no query or fragment.
    const u = new URL(issuer);
    if (u.search || u.hash || issuer.includes('?') || issuer.includes('#'))
      problems.push('LATCHKEY_ISSUER: must have no query or fragment');
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && (!tls || allowInsecure))) {
      problems.push('LATCHKEY_ISSUER: must be an https URL (http only when TLS is off)');
    }
    if (u.pathname !== '/' || issuer.endsWith('/'))
      problems.push('LATCHKEY_ISSUER: must be an origin without a path or trailing slash');
  } catch {
    problems.push(`LATCHKEY_ISSUER: not a URL (got ${JSON.stringify(issuer)})`);
  }

  const databaseUrl = str('databaseUrl');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('LATCHKEY_DATABASE_URL: must start with postgres:// or postgresql://');
  }
  const signingAlg = (str('signingAlg') ?? defaults.signingAlg) as SigningAlgorithm;
  if (!SIGNING_ALGORITHMS.includes(signingAlg))
    problems.push(`LATCHKEY_SIGNING_ALG: must be one of ${SIGNING_ALGORITHMS.join(', ')}`);
  const adminToken = str('adminToken');
  if (adminToken !== undefined && adminToken.length < 32)
    problems.push('LATCHKEY_ADMIN_TOKEN: must be at least 32 characters');
  const logLevel = str('logLevel') ?? defaults.logLevel;
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel))
    problems.push('LATCHKEY_LOG_LEVEL: not a log level');

  const config: Config = {
    port,
    host,
    issuer,
    dataDir: resolve(str('dataDir') ?? defaults.dataDir),
    databaseUrl,
    adminToken,
    tls,
    tlsCert,
    tlsKey,
    allowInsecure,
    masterKey: str('masterKey'),
    signingAlg,
    accessTokenTtl: int('accessTokenTtl', 1, 86400),
    maxAccessTokenTtl: int('maxAccessTokenTtl', 1, 86400),
    clockSkew: int('clockSkew', 0, 300),
    jwksMaxAge: int('jwksMaxAge', 0, 86400),
    formBodyLimit: int('formBodyLimit', 1024, 1024 * 1024),
    jsonBodyLimit: int('jsonBodyLimit', 1024, 4 * 1024 * 1024),
    requestTimeout: int('requestTimeout', 1, 3600),
    auditAggregateWindow: int('auditAggregateWindow', 1, 3600),
    shutdownGrace: int('shutdownGrace', 0, 600),
    auditCheckpointFile: str('auditCheckpointFile') === undefined ? undefined : resolve(str('auditCheckpointFile')!),
    maxConnections: int('maxConnections', 10, 1_000_000),
    authFailureLimit: int('authFailureLimit', 1, 1_000_000),
    clientCacheTtl: int('clientCacheTtl', 0, 300),
    keyRotationInterval: int('keyRotationInterval', 2, 366 * 86400),
    keyAnnounceWindow: int('keyAnnounceWindow', 0, 30 * 86400),
    keyCheckInterval: int('keyCheckInterval', 1, 3600),
    feedHeartbeat: int('feedHeartbeat', 1, 3600),
    feedMaxStreamsPerClient: int('feedMaxStreamsPerClient', 1, 100_000),
    feedMaxStreams: int('feedMaxStreams', 1, 1_000_000),
    feedMaxPage: int('feedMaxPage', 1, 10_000),
    feedStallTimeout: int('feedStallTimeout', 1, 3600),
    auditCheckpointInterval: int('auditCheckpointInterval', 1, 86400),
    auditRetention: int('auditRetention', 0, 100 * 366 * 86400),
    detectInterval: int('detectInterval', 1, 3600),
    detectAuthFailures: int('detectAuthFailures', 1, 1_000_000),
    detectAuthWindow: int('detectAuthWindow', 1, 86400),
    detectDenials: int('detectDenials', 1, 1_000_000),
    detectDenialWindow: int('detectDenialWindow', 1, 86400),
    detectIssuanceFactor: int('detectIssuanceFactor', 2, 1_000_000),
    detectIssuanceWindow: int('detectIssuanceWindow', 1, 86400),
    detectIssuanceMin: int('detectIssuanceMin', 1, 100_000_000),
    alertCooldown: int('alertCooldown', 0, 86400),
    alertWebhooks: list('alertWebhooks'),
    alertWebhookSecret: str('alertWebhookSecret'),
    alertWebhookAttempts: int('alertWebhookAttempts', 1, 20),
    alertLock: list('alertLock'),
    alertLockSeconds: int('alertLockSeconds', 1, 366 * 86400),
    policyBodyLimit: int('policyBodyLimit', 64 * 1024, 256 * 1024 * 1024),
    policyValidationTimeout: int('policyValidationTimeout', 1, 600),
    trustDomain: str('trustDomain'),
    // Seconds, not minutes, are allowed so that tests can watch certificates rotate.
    workloadCertTtl: int('workloadCertTtl', 5, 30 * 86400),
    caCert: str('caCert'),
    caKey: str('caKey'),
    caBundle: str('caBundle'),
    caRotateAnnounce:
      input.caRotateAnnounce === undefined || input.caRotateAnnounce === ''
        ? undefined
        : int('caRotateAnnounce', 0, 366 * 86400),
    trustedProxies: list('trustedProxies'),
    outboundAllow: list('outboundAllow'),
    clientCertHeader: (str('clientCertHeader') ?? defaults.clientCertHeader).toLowerCase(),
    logLevel,
  };
  if ((config.caCert === undefined) !== (config.caKey === undefined))
    problems.push('LATCHKEY_CA_CERT and LATCHKEY_CA_KEY: give both or neither');
  if (config.caBundle !== undefined && config.caCert === undefined)
    problems.push('LATCHKEY_CA_BUNDLE: only with LATCHKEY_CA_CERT and LATCHKEY_CA_KEY');
  if (!/^[a-z0-9-]{1,64}$/.test(config.clientCertHeader)) problems.push('LATCHKEY_CLIENT_CERT_HEADER: a header name');
  for (const p of config.trustedProxies) {
    if (!/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(p))
      problems.push(`LATCHKEY_TRUSTED_PROXIES: ${JSON.stringify(p)} is not an IP address or CIDR`);
  }
  // The point of the file is to be out of reach of whoever can rewrite the database.
  if (
    config.auditCheckpointFile !== undefined &&
    !relative(config.dataDir, config.auditCheckpointFile).startsWith('..')
  ) {
    problems.push('LATCHKEY_AUDIT_CHECKPOINT_FILE: must be outside the data folder (LATCHKEY_DATA_DIR)');
  }
  for (const a of config.outboundAllow) {
    if (!/^([0-9a-fA-F.:]+(\/\d{1,3})?|[A-Za-z0-9.-]{1,253})$/.test(a))
      problems.push(`LATCHKEY_OUTBOUND_ALLOW: ${JSON.stringify(a)} is not a host name, IP address or CIDR`);
  }
  // SPIFFE ID §2.1: a trust domain is lowercase letters, digits, dots, dashes and underscores.
  if (config.trustDomain !== undefined && !/^[a-z0-9._-]{1,255}$/.test(config.trustDomain))
    problems.push('LATCHKEY_TRUST_DOMAIN: lowercase letters, digits, ".", "-" and "_" only');
  for (const u of config.alertWebhooks) {
    try {
      const url = new URL(u);
      if (
        url.protocol !== 'https:' &&
        !(url.protocol === 'http:' && (LOOPBACK_HOSTS.has(url.hostname) || url.hostname === '[::1]' || allowInsecure))
      ) {
        problems.push(
          `LATCHKEY_ALERT_WEBHOOKS: ${JSON.stringify(u)} must be https (http only to loopback or with LATCHKEY_ALLOW_INSECURE=1)`,
        );
      }
    } catch {
      problems.push(`LATCHKEY_ALERT_WEBHOOKS: ${JSON.stringify(u)} is not a URL`);
    }
  }
  if (config.alertWebhooks.length > 0 && (config.alertWebhookSecret ?? '').length < 32) {
    problems.push('LATCHKEY_ALERT_WEBHOOK_SECRET: webhooks need a signing secret of at least 32 characters');
  }
  for (const d of config.alertLock) {
    if (!(LOCKABLE_DETECTORS as readonly string[]).includes(d))
      problems.push(`LATCHKEY_ALERT_LOCK: ${JSON.stringify(d)} is not one of ${LOCKABLE_DETECTORS.join(', ')}`);
  }
  // Issue 3: a next key is published for at least the JWKS cache lifetime before it signs; each
  // replica sees it within one check interval, hence the floor.
  const announceFloor = config.jwksMaxAge + 2 * config.keyCheckInterval;
  if (input.keyAnnounceWindow === undefined || input.keyAnnounceWindow === '') config.keyAnnounceWindow = announceFloor;
  else if (config.keyAnnounceWindow < announceFloor) {
    problems.push(
      `LATCHKEY_KEY_ANNOUNCE_WINDOW: must be at least the JWKS max-age plus two check intervals (${announceFloor})`,
    );
  }
  if (config.keyRotationInterval <= config.keyAnnounceWindow) {
    problems.push(
      `LATCHKEY_KEY_ROTATION_INTERVAL: must be longer than the announce window (${config.keyAnnounceWindow})`,
    );
  }
  if (config.accessTokenTtl > config.maxAccessTokenTtl)
    problems.push('LATCHKEY_ACCESS_TOKEN_TTL: must not exceed LATCHKEY_MAX_ACCESS_TOKEN_TTL');
  if (problems.length > 0)
    throw new LatchkeyError('config_invalid', `invalid configuration:\n  ${problems.join('\n  ')}`);
  return Object.freeze(config);
}

/** Warnings for settings that are allowed but insecure. */
export function insecureWarnings(config: Config): string[] {
  const w: string[] = [];
  if (!config.tls) w.push('TLS is off: tokens and secrets travel in clear text');
  if (config.allowInsecure) w.push('LATCHKEY_ALLOW_INSECURE=1 is set');
  // Failures naming a client come from anyone: locking on them hands an attacker a lockout switch.
  if (config.alertLock.includes('failed_auth_burst'))
    w.push('LATCHKEY_ALERT_LOCK=failed_auth_burst lets anyone who knows a client id lock that client out');
  if (config.outboundAllow.length > 0)
    w.push(`LATCHKEY_OUTBOUND_ALLOW lets client-registered URLs reach ${config.outboundAllow.join(', ')}`);
  if (config.databaseUrl && !config.masterKey)
    w.push('PostgreSQL without LATCHKEY_MASTER_KEY: each replica needs the same master key file');
  return w;
}
