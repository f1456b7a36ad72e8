import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { pino } from 'pino';
import { startTestIdp, type TestIdp, basicAuth, auditEvents } from '@latchkey/testkit';
import type { AuditEvent } from '@latchkey/protocol';

const AUD = 'https://orders.internal';
const basic = basicAuth;

describe('audit events from day one, and no secret in any log or audit row', () => {
  let t: TestIdp;
  let logs = '';
  before(async () => {
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logs += chunk.toString();
        cb();
      },
    });
    t = await startTestIdp({ logger: pino({ level: 'trace' }, sink), config: { accessLog: 'on' } });
  });
  after(() => t.close());

  const events = async (): Promise<AuditEvent[]> => {
    await t.idp.audit.flush();
    return auditEvents(t.idp.storage, { limit: 10_000 });
  };

  test('query strings never reach the logs (issue 11, finding 20): a token put in a URL by mistake stays out', async () => {
    const secret = 'eyJhbGciOiJFUzI1NiJ9.leaked-by-mistake.sig';
    await t.fetch(`${t.issuer}/healthz?access_token=${encodeURIComponent(secret)}`);
    await t.fetch(`${t.issuer}/jwks?token=${encodeURIComponent(secret)}`);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(logs.includes('"path":"/healthz"'), 'the request is logged, by path');
    assert.ok(!logs.includes('leaked-by-mistake'), 'but not its query string');
  });

  test('registration, authentication, issuance, introspection and revocation each leave one event', async () => {
    const c = await t.register({ client_id: 'audited', audiences: [AUD], scope: 's' });
    const auth = basic(c.client_id, c.client_secret);
    const issued = await t.post('/token', { grant_type: 'client_credentials', scope: 's' }, { authorization: auth });
    const token = issued.body.access_token as string;
    const { jti } = jose.decodeJwt(token);
    await t.post(
      '/token',
      { grant_type: 'client_credentials' },
      { authorization: basic(c.client_id, 'wrong-secret-value') },
    );
    await t.post('/token', { grant_type: 'client_credentials', scope: 'admin' }, { authorization: auth });
    await t.post('/introspect', { token }, { authorization: auth });
    await t.post('/revoke', { token }, { authorization: auth });

    const all = await events();
    const of = (type: string) =>
      all.filter((e) => e.type === type && (e.client_id === 'audited' || e.subject === 'audited'));
    assert.equal(of('client.registered').length, 1);
    // Each successful authentication is part of the one event of the action it authenticated.
    for (const type of ['token.issued', 'token.request_failed', 'token.introspected', 'token.revoked']) {
      assert.equal(of(type)[0]!.detail!.auth_method, 'client_secret_basic', type);
    }
    const failed = of('client.auth_failed');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.reason, 'bad_secret');
    assert.equal(failed[0]!.outcome, 'failure');
    const issuedEv = of('token.issued');
    assert.equal(issuedEv.length, 1);
    assert.equal(issuedEv[0]!.detail!.jti, jti);
    assert.equal(issuedEv[0]!.source_ip, '127.0.0.1');
    assert.match(issuedEv[0]!.request_id ?? '', /^[0-9a-f-]{36}$/);
    assert.match(issuedEv[0]!.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(of('token.request_failed')[0]!.reason, 'invalid_scope');
    assert.equal(of('token.introspected').length, 1);
    const revoked = of('token.revoked');
    assert.equal(revoked.length, 1);
    assert.equal(revoked[0]!.detail!.jti, jti);

    const everything = JSON.stringify(all) + logs;
    for (const secret of [
      c.client_secret,
      c.registration_access_token,
      token,
      t.adminToken,
      'wrong-secret-value',
      token.split('.')[2]!,
    ]) {
      assert.ok(!everything.includes(secret), 'a secret or token reached the audit log or the logs');
    }
  });

  test('control characters from input are escaped in audit rows', async () => {
    const evil = 'evil\nFAKE LINE\u0007';
    await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(evil, 'x') });
    const failed = (await events()).filter((e) => e.type === 'client.auth_failed' && e.client_id?.startsWith('evil'));
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.client_id, 'evil\\u000aFAKE LINE\\u0007');
  });
});
