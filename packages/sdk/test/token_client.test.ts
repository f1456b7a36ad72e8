import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { createTokenClient, TokenClientError } from '@latchkey/sdk/token-client';
import { FakeClock, startTestIdp, type TestIdp } from '@latchkey/testkit';

const ORDERS = 'https://orders.internal';
const BILLING = 'urn:latchkey:svc:billing';

describe('token client against a real IdP', () => {
  let t: TestIdp;
  let issued = 0;
  let countingFetch: typeof fetch;
  before(async () => {
    t = await startTestIdp();
    countingFetch = (async (input: string | URL | Request, init?: RequestInit) => {
      if (String(input).endsWith('/token')) issued++;
      return t.fetch(input, init);
    }) as typeof fetch;
  });
  after(() => t.close());

  test('client_secret_basic: tokens cached per (audience, scope); concurrent callers share one request', async () => {
    const c = await t.register({ audiences: [ORDERS, BILLING], scope: 'a b' });
    const tokens = createTokenClient({
      issuer: t.issuer,
      clientId: c.client_id,
      clientSecret: c.client_secret,
      fetch: countingFetch,
    });
    const start = issued;
    const burst = await Promise.all(
      Array.from({ length: 10 }, () => tokens.getToken({ audience: ORDERS, scope: 'a' })),
    );
    assert.equal(new Set(burst).size, 1);
    assert.equal(issued - start, 1);
    assert.equal(await tokens.getToken({ audience: ORDERS, scope: 'a' }), burst[0]);
    const billing = await tokens.getToken({ audience: BILLING });
    assert.equal(jose.decodeJwt(billing).aud, BILLING);
    assert.equal(jose.decodeJwt(burst[0]!).scope, 'a');
    assert.equal(issued - start, 2);
  });

  test('renewed at about 80% of the lifetime', async () => {
    const c = await t.register({ audiences: [ORDERS], access_token_ttl: 2 });
    const clock = new FakeClock();
    const tokens = createTokenClient({
      issuer: t.issuer,
      clientId: c.client_id,
      clientSecret: c.client_secret,
      fetch: t.fetch,
      clock,
    });
    const first = await tokens.getToken();
    clock.advance(1000);
    assert.equal(await tokens.getToken(), first, 'at 50% the cached token is used');
    clock.advance(599);
    assert.equal(await tokens.getToken(), first, 'just before 80% still');
    clock.advance(1);
    assert.notEqual(await tokens.getToken(), first, 'at 80% a new one is fetched');
  });

  test('private_key_jwt', async () => {
    const kp = await jose.generateKeyPair('ES256');
    const c = await t.register({
      audiences: [ORDERS],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...(await jose.exportJWK(kp.publicKey)), kid: 'k1' }] },
    });
    const tokens = createTokenClient({
      issuer: t.issuer,
      clientId: c.client_id,
      privateKey: { key: kp.privateKey, kid: 'k1' },
      fetch: t.fetch,
    });
    assert.equal(jose.decodeJwt(await tokens.getToken()).client_id, c.client_id);
  });

  test('IdP errors surface with their RFC code', async () => {
    const c = await t.register({ audiences: [ORDERS], scope: 'a' });
    const wrong = createTokenClient({ issuer: t.issuer, clientId: c.client_id, clientSecret: 'wrong', fetch: t.fetch });
    await assert.rejects(
      wrong.getToken(),
      (e: unknown) => e instanceof TokenClientError && e.code === 'invalid_client' && e.status === 401,
    );
    const right = createTokenClient({
      issuer: t.issuer,
      clientId: c.client_id,
      clientSecret: c.client_secret,
      fetch: t.fetch,
    });
    await assert.rejects(
      right.getToken({ scope: 'admin' }),
      (e: unknown) => e instanceof TokenClientError && e.code === 'invalid_scope',
    );
    await assert.rejects(
      right.getToken({ audience: BILLING }),
      (e: unknown) => e instanceof TokenClientError && e.code === 'invalid_target',
    );
    assert.throws(() => createTokenClient({ issuer: t.issuer, clientId: 'x' }), TypeError);
  });

  test('fetchFor attaches the token for the audience and retries once after a 401', async () => {
    const c = await t.register({ audiences: [ORDERS] });
    const tokens = createTokenClient({
      issuer: t.issuer,
      clientId: c.client_id,
      clientSecret: c.client_secret,
      fetch: t.fetch,
    });
    const seen: string[] = [];
    const service = createServer((req, res) => {
      seen.push(req.headers.authorization ?? '');
      res.writeHead(seen.length === 1 ? 401 : 200).end();
    });
    await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
    try {
      const f = tokens.fetchFor({ audience: ORDERS });
      const res = await f(`http://127.0.0.1:${(service.address() as { port: number }).port}/x`);
      assert.equal(res.status, 200);
      assert.equal(seen.length, 2);
      assert.match(seen[0]!, /^Bearer ey/);
      assert.notEqual(seen[0], seen[1], 'the retry carries a fresh token');
    } finally {
      service.close();
    }
  });
});
