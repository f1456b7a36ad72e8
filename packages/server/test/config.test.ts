import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import {
  configFromEnv,
  defaults,
  envName,
  LatchkeyError,
  loadConfig,
  SETTINGS,
  settingsMarkdown,
} from '@latchkey/server';
import { SETTINGS_BEGIN, SETTINGS_END } from '../../../scripts/docs.ts';

const problems = (input: Parameters<typeof loadConfig>[0], unknown: string[] = []): string[] => {
  try {
    loadConfig(input, unknown);
    return [];
  } catch (err) {
    assert.ok(err instanceof LatchkeyError);
    assert.equal(err.code, 'config_invalid');
    return err.message
      .split('\n')
      .slice(1)
      .map((l) => l.trim());
  }
};

describe('configuration', () => {
  test('defaults: port 8443 on 127.0.0.1, HTTPS, issuer https://localhost:8443, ES256, 5-minute tokens; frozen', () => {
    const c = loadConfig({});
    assert.equal(c.port, 8443);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.tls, true);
    assert.equal(c.issuer, 'https://localhost:8443');
    assert.equal(c.signingAlg, 'ES256');
    assert.equal(c.accessTokenTtl, 300);
    assert.ok(c.dataDir.endsWith('.latchkey'));
    assert.ok(Object.isFrozen(c));
    assert.equal(
      c.accessLog,
      false,
      'the access log is off unless asked for (docs/benchmarks.md: it costs ~10% of issuance)',
    );
  });

  test('environment variables map to keys; unknown LATCHKEY_* names are rejected', () => {
    const { input, unknown } = configFromEnv({
      LATCHKEY_PORT: '9000',
      LATCHKEY_TLS: 'off',
      LATCHKEY_PROT: '1',
      PATH: '/bin',
    });
    assert.deepEqual(input, { port: '9000', tls: 'off' });
    assert.deepEqual(unknown, ['LATCHKEY_PROT']);
    assert.deepEqual(problems(input, unknown), ['LATCHKEY_PROT: unknown setting']);
    assert.equal(loadConfig(input).issuer, 'http://localhost:9000');
  });

  test('one clear line per bad value', () => {
    const lines = problems({
      port: 'eighty',
      signingAlg: 'HS256',
      databaseUrl: 'mysql://x',
      adminToken: 'short',
      issuer: 'https://x/?q=1',
      accessTokenTtl: '0',
    });
    // Each setting by its schema, in declaration order; then the rules between settings.
    assert.deepEqual(lines, [
      'LATCHKEY_PORT: must be an integer from 0 to 65535 (got "eighty")',
      'LATCHKEY_DATABASE_URL: must be a URL starting with postgres:// or postgresql:// (got "mysql://x")',
      'LATCHKEY_ADMIN_TOKEN: must be at least 32 characters',
      'LATCHKEY_SIGNING_ALG: must be one of ES256, EdDSA, RS256',
      'LATCHKEY_ACCESS_TOKEN_TTL: must be an integer from 1 to 86400 (got "0")',
      'LATCHKEY_ISSUER: must have no query or fragment',
    ]);
    // A secret is never echoed.
    assert.ok(!lines.join('\n').includes('short'));
    // Nor the password in a URL.
    assert.deepEqual(problems({ databaseUrl: 'mysql://app:hunter2@db:3306/x' }), [
      'LATCHKEY_DATABASE_URL: must be a URL starting with postgres:// or postgresql:// (got "mysql://app:***@db:3306/x")',
    ]);
  });

  test('TLS off is refused on a non-loopback host unless LATCHKEY_ALLOW_INSECURE=1', () => {
    assert.deepEqual(problems({ tls: 'off', host: '0.0.0.0' }), [
      'LATCHKEY_TLS: off is refused on non-loopback host 0.0.0.0; set LATCHKEY_ALLOW_INSECURE=1 to force it',
    ]);
    assert.equal(loadConfig({ tls: 'off', host: '0.0.0.0', allowInsecure: '1' }).tls, false);
    assert.equal(loadConfig({ tls: 'off', host: '::1' }).tls, false);
    assert.deepEqual(problems({ tls: 'maybe' }), [
      'LATCHKEY_TLS: must be one of on, true, 1, yes, off, false, 0, no (got "maybe")',
    ]);
  });

  test('an http issuer needs TLS off; cert and key come together', () => {
    assert.deepEqual(problems({ issuer: 'http://idp.example' }), [
      'LATCHKEY_ISSUER: must be an https URL (http only when TLS is off)',
    ]);
    assert.deepEqual(problems({ tlsCert: '/x.pem' }), ['LATCHKEY_TLS_CERT and LATCHKEY_TLS_KEY: give both or neither']);
  });
});

describe('configuration schema', () => {
  test('lists parse item by item; each bad item is its own line; arrays are frozen too', () => {
    assert.deepEqual(problems({ trustedProxies: '10.0.0.1, nope', alertLock: 'assertion_replay,bogus' }), [
      'LATCHKEY_ALERT_LOCK: "bogus" is not one of failed_auth_burst, issuance_spike, denied_decisions_burst, assertion_replay, identity_mismatch',
      'LATCHKEY_TRUSTED_PROXIES: "nope" is not an IP address or CIDR',
    ]);
    const c = loadConfig({ trustedProxies: '10.0.0.1,10.0.0.0/8' });
    assert.deepEqual(c.trustedProxies, ['10.0.0.1', '10.0.0.0/8']);
    assert.ok(Object.isFrozen(c.trustedProxies));
    assert.throws(() => (c.trustedProxies as string[]).push('x'), TypeError);
  });

  test('every setting has an env variable that configFromEnv reads, a description and a default or a reason', () => {
    for (const key of Object.keys(SETTINGS) as (keyof typeof SETTINGS)[]) {
      const s = SETTINGS[key] as { description?: string; default?: unknown };
      assert.ok(s.description && s.description.length > 10, `${key}: description`);
      const name = envName(key);
      assert.match(name, /^LATCHKEY_[A-Z_]+$/);
      assert.deepEqual(Object.keys(configFromEnv({ [name]: '1' }).input), [key]);
    }
  });

  test('the computed defaults agree with the validator (keyAnnounceWindow is the floor it enforces)', () => {
    const c = loadConfig({ jwksMaxAge: '100', keyCheckInterval: '10' });
    assert.equal(c.keyAnnounceWindow, 120);
    assert.deepEqual(
      loadConfig({ jwksMaxAge: '100', keyCheckInterval: '10', keyAnnounceWindow: '120' }).keyAnnounceWindow,
      120,
    );
    assert.match(problems({ jwksMaxAge: '100', keyCheckInterval: '10', keyAnnounceWindow: '119' })[0]!, /at least/);
    assert.equal(defaults.keyAnnounceWindow, undefined, 'no exported default that the validator would refuse');
  });

  test('the settings table in docs/configuration.md is the one the schema makes (npm run docs)', () => {
    const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    const begin = doc.indexOf(SETTINGS_BEGIN);
    const end = doc.indexOf(SETTINGS_END);
    assert.ok(begin >= 0 && end > begin, 'markers present');
    assert.equal(doc.slice(begin + SETTINGS_BEGIN.length, end).trim(), settingsMarkdown());
  });
});
