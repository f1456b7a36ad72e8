import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { basicAuth, FakeClock, startTestIdp, type TestIdp } from '@latchkey/testkit';
import { LatchkeyError } from '@latchkey/server';

const AUD = 'https://orders.internal';
const basic = basicAuth;

describe('introspection (RFC 7662) and revocation (RFC 7009)', () => {
  const clock = new FakeClock();
  let t: TestIdp;
  let a: { client_id: string; client_secret: string };
  let b: { client_id: string; client_secret: string };
  const tokenFor = async (c: typeof a): Promise<string> =>
    (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(c) })).body.access_token;
  before(async () => {
    t = await startTestIdp({ clock });
    a = (await t.register({ audiences: [AUD], scope: 'x' })) as typeof a;
    b = (await t.register({ audiences: [AUD] })) as typeof b;
  });
  after(() => t.close());

  test('an active token introspects with its claims and no-store', async () => {
    const token = await tokenFor(a);
    const res = await t.post('/introspect', { token }, { authorization: basic(b) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const claims = jose.decodeJwt(token);
    assert.deepEqual(res.body, { active: true, token_type: 'Bearer', ...claims });
  });

  test('garbage, a tampered token, and a token of another issuer introspect as {"active":false} only', async () => {
    const token = await tokenFor(a);
    const [h, p, s] = token.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, scope: 'admin' })).toString('base64url')}.${s}`;
    const foreignKey = await jose.generateKeyPair('ES256');
    const foreign = await new jose.SignJWT(payload)
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: JSON.parse(Buffer.from(h, 'base64url').toString()).kid })
      .sign(foreignKey.privateKey);
    const noneAlg = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${p}.`;
    for (const bad of ['garbage', 'a.b.c', tampered, foreign, noneAlg, `${token}x`, 'x'.repeat(10000)]) {
      const res = await t.post('/introspect', { token: bad }, { authorization: basic(b) });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { active: false });
    }
  });

  test('introspection needs client authentication and a token', async () => {
    const token = await tokenFor(a);
    const anon = await t.post('/introspect', { token });
    assert.equal(anon.status, 401);
    assert.equal(anon.body.error, 'invalid_client');
    const missing = await t.post('/introspect', {}, { authorization: basic(b) });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error, 'invalid_request');
    const repeated = await t.post('/introspect', `token=${token}&token=${token}`, { authorization: basic(b) });
    assert.equal(repeated.body.error, 'invalid_request');
  });

  test('revocation stores the jti; the token then introspects inactive', async () => {
    const token = await tokenFor(a);
    const res = await t.post('/revoke', { token, token_type_hint: 'access_token' }, { authorization: basic(a) });
    assert.equal(res.status, 200);
    const { jti } = jose.decodeJwt(token);
    assert.equal(await t.idp.storage.isTokenRevoked(t.issuer, jti as string), true);
    assert.deepEqual((await t.post('/introspect', { token }, { authorization: basic(b) })).body, { active: false });
    // Revoking twice is fine (idempotent).
    assert.equal((await t.post('/revoke', { token }, { authorization: basic(a) })).status, 200);
  });

  test("a client cannot revoke another client's token", async () => {
    const token = await tokenFor(a);
    const res = await t.post('/revoke', { token }, { authorization: basic(b) });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'unauthorized_client');
    assert.equal((await t.post('/introspect', { token }, { authorization: basic(b) })).body.active, true);
  });

  test('unknown or invalid tokens answer 200 (RFC 7009 §2.2) and store nothing', async () => {
    const entries = async () =>
      (await t.idp.storage.listFeedEvents('revocations', 0, 100_000, Math.floor(Date.now() / 1000))).length;
    const before = await entries();
    for (const token of ['garbage', 'a.b.c']) {
      const res = await t.post('/revoke', { token }, { authorization: basic(a) });
      assert.equal(res.status, 200);
    }
    assert.equal(await entries(), before, 'no revocation entry was written');
  });

  test('revocation never answers 200 when the entry could not be stored', async () => {
    const token = await tokenFor(a);
    const storage = t.idp.storage;
    const original = storage.appendFeedEvent.bind(storage);
    // Fault injection at the storage port: the database goes away between auth and write.
    storage.appendFeedEvent = async () => {
      throw new LatchkeyError('storage_unavailable', 'database down');
    };
    try {
      const res = await t.post('/revoke', { token }, { authorization: basic(a) });
      assert.equal(res.status, 503);
      assert.equal(res.body.error, 'temporarily_unavailable');
    } finally {
      storage.appendFeedEvent = original;
    }
    assert.equal((await t.post('/introspect', { token }, { authorization: basic(b) })).body.active, true);
  });

  test('an expired token introspects inactive, and revoking it stores nothing', async () => {
    const c = await t.register({ audiences: [AUD], access_token_ttl: 1 });
    const token = await tokenFor(c as never);
    assert.equal((await t.post('/introspect', { token }, { authorization: basic(b) })).body.active, true);
    clock.advanceSeconds(2);
    assert.deepEqual((await t.post('/introspect', { token }, { authorization: basic(b) })).body, { active: false });
    const entries = async () =>
      (await t.idp.storage.listFeedEvents('revocations', 0, 100_000, Math.floor(clock.now() / 1000))).length;
    const before = await entries();
    assert.equal((await t.post('/revoke', { token }, { authorization: basic(c as never) })).status, 200);
    assert.equal(await t.idp.storage.isTokenRevoked(t.issuer, jose.decodeJwt(token).jti as string), false);
    assert.equal(await entries(), before, 'no revocation entry was written');
  });

  test("a deleted client's tokens introspect inactive", async () => {
    const c = await t.register({ audiences: [AUD] });
    const token = await tokenFor(c as never);
    const del = await t.fetch(`${t.issuer}/admin/clients/${c.client_id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${t.adminToken}` },
    });
    assert.equal(del.status, 204);
    assert.deepEqual((await t.post('/introspect', { token }, { authorization: basic(b) })).body, { active: false });
  });
});
