import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { startTestIdp, type TestIdp, auditEvents } from '@latchkey/testkit';
import { ClientJwks } from '../../src/oauth/client_auth/client_jwks.ts';
import { OutboundFetch } from '../../src/http/outbound_fetch.ts';

const AUD = 'https://orders.internal';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** A loopback HTTP listener that counts what reaches it. */
async function listener(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; hits: () => number; server: Server }> {
  let hits = 0;
  const server = createHttpServer((req, res) => {
    hits++;
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits, server };
}

describe('everything the IdP fetches goes through one outbound guard (issue 11, findings 3, 11, 14)', () => {
  let t: TestIdp;
  let allowed: TestIdp;
  let key: CryptoKey;
  let jwksBody: string;
  const closers: (() => unknown)[] = [];
  before(async () => {
    // TLS off only so that the jwks_uri may be plain http (development mode); the address policy is the subject.
    t = await startTestIdp({ tls: false });
    allowed = await startTestIdp({ tls: false, config: { outboundAllow: ['127.0.0.1'] } });
    const pair = await jose.generateKeyPair('ES256');
    key = pair.privateKey;
    jwksBody = JSON.stringify({ keys: [{ ...(await jose.exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] });
  });
  after(async () => {
    for (const c of closers) await c();
    await t.close();
    await allowed.close();
  });

  const assertionFor = (idp: TestIdp, clientId: string) =>
    new jose.SignJWT({ jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(idp.issuer)
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(key);
  const tokenFor = async (idp: TestIdp, clientId: string) =>
    idp.post('/token', {
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await assertionFor(idp, clientId),
    });
  const registerAt = (idp: TestIdp, jwksUri: string) =>
    idp.register({ audiences: [AUD], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: jwksUri });

  test('loopback jwks_uri (by address, by name, IPv6, the whole 127/8) is refused before connecting, with one uniform error', async () => {
    const l = await listener((_q, r) => r.end(jwksBody));
    closers.push(() => l.server.close());
    const port = new URL(l.url).port;
    const descriptions = new Set<string>();
    for (const uri of [
      `${l.url}/jwks`,
      `http://localhost:${port}/jwks`,
      `http://127.0.0.2:${port}/jwks`,
      `http://[::1]:${port}/jwks`,
      `http://[::ffff:127.0.0.1]:${port}/jwks`,
      `http://0.0.0.0:${port}/jwks`,
    ]) {
      const c = await registerAt(t, uri);
      const res = await tokenFor(t, c.client_id);
      assert.equal(res.status, 401, uri);
      assert.equal(res.body.error, 'invalid_client');
      descriptions.add(res.body.error_description);
    }
    assert.equal(l.hits(), 0, 'no request reached the loopback listener');
    assert.deepEqual([...descriptions], ["the client's registered keys could not be obtained"]);
    const failed = await auditEvents(t.idp.storage, { type: 'client.auth_failed', limit: 100 });
    assert.ok(failed.filter((e) => e.reason === 'jwks_unavailable').length >= 6);
  });

  test('an allowed destination works; failures are cached; oversized sets, cross-origin redirects and TLS errors are refused alike — never a 500', async () => {
    const good = await listener((_q, r) => r.writeHead(200, { 'content-type': 'application/json' }).end(jwksBody));
    const failing = await listener((_q, r) => r.writeHead(500).end('boom'));
    const huge = await listener((_q, r) =>
      r.writeHead(200, { 'content-type': 'application/json' }).end(`{"keys":[${'{"kty":"EC"},'.repeat(200_000)}{}]}`),
    );
    const target = await listener((_q, r) => r.end(jwksBody));
    const redirecting = await listener((_q, r) => r.writeHead(302, { location: `${target.url}/jwks` }).end());
    // Plain TCP that closes at once: an https jwks_uri to it fails the TLS handshake (finding 14).
    const tcp = createTcpServer((s) => s.destroy());
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    closers.push(
      () => [good, failing, huge, target, redirecting].forEach((l) => l.server.close()),
      () => tcp.close(),
    );

    const ok = await registerAt(allowed, `${good.url}/jwks`);
    assert.equal((await tokenFor(allowed, ok.client_id)).status, 200);

    const bad = await registerAt(allowed, `${failing.url}/jwks`);
    for (let i = 0; i < 5; i++) assert.equal((await tokenFor(allowed, bad.client_id)).status, 401);
    assert.equal(failing.hits(), 1, 'a failed fetch is remembered: five token requests, one outbound request');

    for (const uri of [
      `${huge.url}/jwks`,
      `${redirecting.url}/jwks`,
      `https://127.0.0.1:${(tcp.address() as AddressInfo).port}/jwks`,
    ]) {
      const c = await registerAt(allowed, uri);
      const res = await tokenFor(allowed, c.client_id);
      assert.equal(res.status, 401, uri);
      assert.equal(res.body.error_description, "the client's registered keys could not be obtained");
    }
    assert.equal(target.hits(), 0, 'a redirect to another origin is not followed');
  });

  test('the cache of remote key sets is bounded, and a client changing its URI replaces its entry', async () => {
    const l = await listener((_q, r) => r.end(jwksBody));
    closers.push(() => l.server.close());
    const outbound = new OutboundFetch({ allowHttp: true, allowSpecialAddresses: false, allow: ['127.0.0.1'] });
    closers.push(() => outbound.close());
    const jwks = new ClientJwks({ outbound, maxEntries: 10 });
    const client = (id: string, path: string) =>
      ({
        clientId: id,
        metadata: {
          grant_types: [],
          token_endpoint_auth_method: 'private_key_jwt',
          audiences: [],
          jwks_uri: `${l.url}/${path}`,
        },
        secretHash: null,
        registrationTokenHash: '',
        createdAt: 0,
        updatedAt: 0,
        disabled: false,
        lockedUntil: null,
      }) as const;
    for (let i = 0; i < 50; i++) assert.equal((await jwks.keySet(client(`c${i}`, 'a') as never)).keys.length, 1);
    assert.equal(jwks.size, 10);
    for (let i = 0; i < 20; i++) await jwks.keySet(client('same', `path-${i}`) as never);
    assert.equal(jwks.size, 10);
  });

  test('the guard refuses special-purpose addresses and non-https schemes by itself', async () => {
    const strict = new OutboundFetch({ allowHttp: false, allowSpecialAddresses: false });
    closers.push(() => strict.close());
    for (const u of [
      'http://example.invalid/',
      'https://127.0.0.1/',
      'https://10.0.0.1/',
      'https://169.254.169.254/',
      'https://[fe80::1]/',
      'https://[fd00::1]/',
      'https://100.64.0.1/',
      'file:///etc/passwd',
      'https://user:pw@example.invalid/',
    ]) {
      assert.throws(
        () => strict.checkUrl(u),
        (e: Error & { code?: string }) => e.code === 'outbound_fetch_failed',
        u,
      );
    }
  });
});
