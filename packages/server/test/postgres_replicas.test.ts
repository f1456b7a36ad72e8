import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import {
  startPostgresIfConfigured,
  startTestIdp,
  testDatabaseUrl,
  workloadCsr,
  type TestIdp,
  basicAuth,
  auditEvents,
  FakeClock,
} from '@latchkey/testkit';
import { openSse } from './feeds/sse_reader.ts';

const AUD = 'https://orders.internal';
const basic = basicAuth;

if (testDatabaseUrl() === undefined) {
  test('two IdP replicas on one PostgreSQL', {
    skip: 'LATCHKEY_TEST_DATABASE_URL is not set (CI sets it and fails without it)',
  }, () => {});
} else {
  describe('two IdP replicas on one PostgreSQL', () => {
    let a: TestIdp;
    let b: TestIdp;
    before(async () => {
      const databaseUrl = await startPostgresIfConfigured();
      const masterKey = randomBytes(32).toString('base64');
      const adminToken = randomBytes(32).toString('base64url');
      // Started together: they race to create the first signing key and must agree on one.
      [a, b] = await Promise.all([
        startTestIdp({ databaseUrl, tls: false, adminToken, config: { masterKey } }),
        startTestIdp({ databaseUrl, tls: false, adminToken, config: { masterKey } }),
      ]);
    });
    after(async () => {
      await a.close();
      await b.close();
    });

    test('both publish the same keys: one current, one next', async () => {
      const ja = await (await a.fetch(`${a.issuer}/jwks`)).json();
      const jb = await (await b.fetch(`${b.issuer}/jwks`)).json();
      assert.equal((ja as { keys: unknown[] }).keys.length, 2);
      const states = (await a.idp.storage.listKeys()).map((k) => k.state).sort();
      assert.deepEqual(states, ['current', 'next']);
      assert.deepEqual(ja, jb);
    });

    test('one workload CA: both serve the root they raced to create; a rotation at one reaches the other within seconds', {
      timeout: 30_000,
    }, async () => {
      const bundle = async (t: TestIdp) => (await t.fetch(`${t.issuer}/ca/bundle`)).text();
      assert.equal(await bundle(a), await bundle(b));
      const first = await bundle(a);
      const rot = await a.fetch(`${a.issuer}/admin/ca/rotate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${a.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ announce_seconds: 0 }),
      });
      assert.equal(rot.status, 200);
      const deadline = Date.now() + 8000;
      while ((await bundle(b)) === first && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
      assert.equal(await bundle(b), await bundle(a));
      assert.equal((await bundle(b)).match(/BEGIN CERTIFICATE/g)!.length, 2);
      // The other replica signs with the new root.
      const c = await a.register({ client_id: 'svid-replica', audiences: [AUD] });
      const { csrPem } = await workloadCsr();
      const res = await b.fetch(`${b.issuer}/workload/certificate`, {
        method: 'POST',
        headers: { authorization: basic(c as never), 'content-type': 'application/json' },
        body: JSON.stringify({ csr: csrPem }),
      });
      const issuer = new X509Certificate(((await res.json()) as { certificate: string }).certificate).issuer;
      assert.notEqual(issuer, new X509Certificate(first).subject);
    });

    test('a client registered at one replica gets tokens at the other; revocation is shared', async () => {
      // Each replica has its own issuer URL here (ephemeral ports), so tokens are checked at the replica that issued them.
      const c = await a.register({ audiences: [AUD] });
      const res = await b.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(c as never) });
      assert.equal(res.status, 200);
      const token = res.body.access_token as string;
      assert.equal((await b.post('/introspect', { token }, { authorization: basic(c as never) })).body.active, true);
      assert.equal((await b.post('/revoke', { token }, { authorization: basic(c as never) })).status, 200);
      assert.equal(await a.idp.storage.isTokenRevoked(b.issuer, jose.decodeJwt(token).jti as string), true);
    });

    test('a revocation made at one replica arrives on a stream opened at the other (LISTEN/NOTIFY)', async () => {
      const c = await a.register({ audiences: [AUD] });
      const stream = await openSse(`${b.issuer}/feeds/stream?streams=revocations`, {
        headers: { authorization: basic(c as never) },
      });
      assert.equal(stream.status, 200);
      const token = (await a.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(c as never) }))
        .body.access_token as string;
      const t0 = Date.now();
      assert.equal((await a.post('/revoke', { token }, { authorization: basic(c as never) })).status, 200);
      const [ev] = await stream.waitFor(1, 3000);
      const elapsed = Date.now() - t0;
      await stream.close();
      assert.equal(JSON.parse(ev!.data).ref, jose.decodeJwt(token).jti);
      assert.ok(elapsed < 1000, `arrived after ${elapsed} ms`);
    });

    test("a key revoked at one replica leaves the other's JWKS within a second; a client revoked there is refused", async () => {
      const current = (await a.idp.storage.getCurrentKey())!.kid;
      const res = await a.fetch(`${a.issuer}/admin/keys/${current}/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${a.adminToken}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(res.status, 200);
      const t0 = Date.now();
      let gone = false;
      while (!gone && Date.now() - t0 < 1000) {
        const kids = ((await (await b.fetch(`${b.issuer}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map(
          (k) => k.kid,
        );
        gone = !kids.includes(current);
        if (!gone) await new Promise((r) => setTimeout(r, 25));
      }
      assert.ok(gone, "the revoked key is still in the other replica's JWKS after 1 s (its check interval is 30 s)");
      const c = await a.register({ audiences: [AUD] });
      assert.equal(
        (await b.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(c as never) })).status,
        200,
        'b caches the client',
      );
      await a.fetch(`${a.issuer}/admin/clients/${c.client_id}/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${a.adminToken}`, 'content-type': 'application/json' },
        body: '{}',
      });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(
        (await b.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(c as never) })).status,
        401,
      );
    });

    test('a client assertion replayed at the other replica is refused', async () => {
      const kp = await jose.generateKeyPair('ES256');
      const c = await a.register({
        audiences: [AUD],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [await jose.exportJWK(kp.publicKey)] },
      });
      // The replicas have different issuer URLs here (ephemeral ports); the assertion names both.
      const assertion = await new jose.SignJWT({ jti: randomBytes(16).toString('base64url') })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer(c.client_id)
        .setSubject(c.client_id)
        .setAudience([a.issuer, b.issuer])
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(kp.privateKey);
      const form = {
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      };
      assert.equal((await a.post('/token', form)).status, 200);
      const replay = await b.post('/token', form);
      assert.equal(replay.status, 401);
      assert.equal(replay.body.error, 'invalid_client');
    });
  });
}

if (testDatabaseUrl() !== undefined) {
  describe('key rotation with two replicas on one PostgreSQL', () => {
    test('two replicas share one schedule: no key promoted twice, one current and one next; both publish and sign with the same keys', {
      timeout: 30_000,
    }, async () => {
      const databaseUrl = await startPostgresIfConfigured();
      const masterKey = randomBytes(32).toString('base64');
      const adminToken = randomBytes(32).toString('base64url');
      const config = { masterKey, keyRotationInterval: 3, keyCheckInterval: 1, jwksMaxAge: 0 };
      // One clock for both replicas; each second both run their schedule at once (the lease decides who acts).
      const clock = new FakeClock();
      const [a, b] = await Promise.all([
        startTestIdp({ databaseUrl, tls: false, adminToken, config, clock }),
        startTestIdp({ databaseUrl, tls: false, adminToken, config, clock }),
      ]);
      try {
        for (let s = 0; s < 8; s++) {
          clock.advanceSeconds(1);
          await Promise.all([a.idp.rotator.tick(), b.idp.rotator.tick()]);
        }
        await a.idp.audit.flush();
        await b.idp.audit.flush();
        const activated = (await auditEvents(a.idp.storage, { type: 'key.activated' })).map(
          (e) => e.detail!.kid as string,
        );
        assert.ok(activated.length >= 2, `${activated.length} rotations in 8 s`);
        assert.equal(new Set(activated).size, activated.length, 'no key was promoted twice');
        const keys = await a.idp.storage.listKeys();
        assert.equal(keys.filter((k) => k.state === 'current').length, 1);
        assert.equal(keys.filter((k) => k.state === 'next').length, 1);
        const current = keys.find((k) => k.state === 'current')!.kid;
        // Within one check interval both replicas publish the same set and sign with the current key.
        const c = await a.register({ audiences: [AUD] });
        let same = false;
        for (let i = 0; i < 20 && !same; i++) {
          const ja = await (await a.fetch(`${a.issuer}/jwks`)).text();
          const jb = await (await b.fetch(`${b.issuer}/jwks`)).text();
          const ta = (
            await a.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(c as never) })
          ).body.access_token;
          const tb = (
            await b.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(c as never) })
          ).body.access_token;
          const now = (await a.idp.storage.getCurrentKey())!.kid;
          same = ja === jb && jose.decodeProtectedHeader(ta).kid === now && jose.decodeProtectedHeader(tb).kid === now;
          if (!same) await new Promise((r) => setTimeout(r, 250));
        }
        assert.ok(same, `replicas converge on the key set (current was ${current})`);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
}
