import { relative, resolve } from 'node:path';
import {
  type Config,
  envName,
  SETTINGS,
  type SettingKey,
  type SettingSchema,
  settingSchema,
} from './config_settings.ts';
import { LatchkeyError } from './errors.ts';

export { type Config, ConfigSchema, envName, flagName, LOCKABLE_DETECTORS, SETTINGS } from './config_settings.ts';

/** Raw configuration input: strings from the environment or flags, or typed values from code. */
export type ConfigInput = Partial<Record<SettingKey, string | number | boolean | string[] | undefined>>;

export const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

const KEYS = Object.keys(SETTINGS) as SettingKey[];
const BY_ENV = new Map(KEYS.map((k) => [envName(k), k]));
const TRUE_WORDS = ['on', 'true', '1', 'yes'];
const FALSE_WORDS = ['off', 'false', '0', 'no'];

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Every setting's declared default (the computed ones, issuer and keyAnnounceWindow, are absent). */
export const defaults: Readonly<Partial<Config>> = deepFreeze(
  Object.fromEntries(
    KEYS.filter((k) => settingSchema(k).default !== undefined).map((k) => [k, settingSchema(k).default]),
  ),
);

/** Reads LATCHKEY_* variables; unknown LATCHKEY_* names are reported as errors by {@link loadConfig}. */
export function configFromEnv(env: NodeJS.ProcessEnv): { input: ConfigInput; unknown: string[] } {
  const input: ConfigInput = {};
  const unknown: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('LATCHKEY_') || value === undefined) continue;
    const key = BY_ENV.get(name);
    if (key) input[key] = value;
    else if (!name.startsWith('LATCHKEY_TEST_')) unknown.push(name);
  }
  return { input, unknown };
}

/** Why a string does not fit a string or enum schema, or undefined. */
function mismatch(s: SettingSchema, value: string): string | undefined {
  if (s.enum) return s.enum.includes(value) ? undefined : `one of ${s.enum.join(', ')}`;
  const fits =
    (s.minLength === undefined || value.length >= s.minLength) &&
    (s.pattern === undefined || new RegExp(s.pattern).test(value));
  return fits ? undefined : (s.expected ?? `matching ${s.pattern}`);
}

/** A setting's value from its raw input, by its schema; a problem line when it does not fit. */
function parseValue(key: SettingKey, raw: unknown, problems: string[]): unknown {
  const s = settingSchema(key);
  const env = envName(key);
  // Secrets are never echoed, nor the password of a URL (a database URL carries one).
  const got = s.secret ? '' : ` (got ${JSON.stringify(String(raw).replace(/(\/\/[^/:@]*:)[^/@]*@/, '$1***@'))})`;
  if (raw === undefined || raw === '') return Array.isArray(s.default) ? [...s.default] : s.default;
  if (s.type === 'integer') {
    const n = typeof raw === 'number' ? raw : /^\d+$/.test(String(raw)) ? Number(raw) : Number.NaN;
    if (Number.isInteger(n) && n >= (s.minimum ?? 0) && n <= (s.maximum ?? Number.MAX_SAFE_INTEGER)) return n;
    problems.push(`${env}: must be an integer from ${s.minimum} to ${s.maximum}${got}`);
    return s.default;
  }
  if (s.type === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    const v = String(raw).toLowerCase();
    if (TRUE_WORDS.includes(v)) return true;
    if (FALSE_WORDS.includes(v)) return false;
    problems.push(`${env}: must be one of ${[...TRUE_WORDS, ...FALSE_WORDS].join(', ')}${got}`);
    return s.default;
  }
  if (s.type === 'array') {
    const items = (Array.isArray(raw) ? raw : String(raw).split(',')).map((x) => String(x).trim()).filter(Boolean);
    for (const item of items) {
      const expected = s.items && mismatch({ ...s.items, expected: s.items.expected ?? s.expected }, item);
      if (expected) problems.push(`${env}: ${JSON.stringify(item)} is not ${expected}`);
    }
    return items;
  }
  const value = s.lowercase ? String(raw).toLowerCase() : String(raw);
  const expected = mismatch(s, value);
  if (expected) {
    problems.push(`${env}: must be ${expected}${s.enum ? '' : got}`);
    return s.default;
  }
  return s.path ? resolve(value) : value;
}

/**
 * Validates configuration once at start: each setting by its schema (`config_settings.ts`), then
 * the rules between settings. Every bad value gets its own line in the thrown error; unknown keys
 * are rejected. The result is deeply frozen.
 */
export function loadConfig(input: ConfigInput, unknownKeys: string[] = []): Readonly<Config> {
  const problems: string[] = unknownKeys.map((k) => `${k}: unknown setting`);
  for (const key of Object.keys(input)) if (!(key in SETTINGS)) problems.push(`${key}: unknown setting`);
  const values: Record<string, unknown> = {};
  for (const key of KEYS) values[key] = parseValue(key, input[key], problems);
  const config = values as Config;
  const { tls, allowInsecure, host, port } = config;

  if (!tls && !allowInsecure && !LOOPBACK_HOSTS.has(host)) {
    problems.push(
      `LATCHKEY_TLS: off is refused on non-loopback host ${host}; set LATCHKEY_ALLOW_INSECURE=1 to force it`,
    );
  }
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined))
    problems.push('LATCHKEY_TLS_CERT and LATCHKEY_TLS_KEY: give both or neither');
  config.issuer ??= `${tls ? 'https' : 'http'}://localhost${port === 443 && tls ? '' : `:${port}`}`;
  const issuer = config.issuer;
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
  if ((config.caCert === undefined) !== (config.caKey === undefined))
    problems.push('LATCHKEY_CA_CERT and LATCHKEY_CA_KEY: give both or neither');
  if (config.caBundle !== undefined && config.caCert === undefined)
    problems.push('LATCHKEY_CA_BUNDLE: only with LATCHKEY_CA_CERT and LATCHKEY_CA_KEY');
  // The point of the file is to be out of reach of whoever can rewrite the database.
  if (
    config.auditCheckpointFile !== undefined &&
    !relative(config.dataDir, config.auditCheckpointFile).startsWith('..')
  ) {
    problems.push('LATCHKEY_AUDIT_CHECKPOINT_FILE: must be outside the data folder (LATCHKEY_DATA_DIR)');
  }
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
  // Issue 3: a next key is published for at least the JWKS cache lifetime before it signs; each
  // replica sees it within one check interval, hence the floor.
  const announceFloor = config.jwksMaxAge + 2 * config.keyCheckInterval;
  if (config.keyAnnounceWindow === undefined) config.keyAnnounceWindow = announceFloor;
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
  return deepFreeze(config);
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
