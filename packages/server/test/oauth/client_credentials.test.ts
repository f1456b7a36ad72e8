import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import * as jose from 'jose';
import { startTestIdp, type TestIdp } from '@latchkey/testkit';

const ORDERS = 'https://orders.internal';
const BILLING = 'urn:latchkey:svc:billing';

describe('client_credentials with openid-client and jose (HTTPS, local CA)', () => {
  let t: TestIdp;
  before(async () => {
    t = await startTestIdp();
  });
  after(() => t.close());

  async function configFor(
    clientId: string,
    auth: oidc.ClientAuth,
    algorithm: 'oidc' | 'oauth2' = 'oauth2',
  ): Promise<oidc.Configuration> {
    const config = await oidc.discovery(new URL(t.issuer), clientId, undefined, auth, {
      algorithm,
      [oidc.customFetch]: t.fetch as oidc.CustomFetch,
    });
    config[oidc.customFetch] = t.fetch as oidc.CustomFetch;
    return config;
  }

  async function verifyWithJose(token: string, audience: string) {
    const jwks = jose.createRemoteJWKSet(new URL(`${t.issuer}/jwks`), {
      [jose.customFetch]: t.fetch as jose.FetchImplementation,
    });
    return jose.jwtVerify(token, jwks, { issuer: t.issuer, audience, typ: 'at+jwt', algorithms: ['ES256'] });
  }

  test('discovery by both well-known paths names the endpoints', async () => {
    for (const algorithm of ['oidc', 'oauth2'] as const) {
      const config = await configFor('x', oidc.None(), algorithm);
      const m = config.serverMetadata();
      assert.equal(m.issuer, t.issuer);
      assert.equal(m.token_endpoint, `${t.issuer}/token`);
      assert.equal(m.jwks_uri, `${t.issuer}/jwks`);
      assert.equal(m.introspection_endpoint, `${t.issuer}/introspect`);
      assert.equal(m.revocation_endpoint, `${t.issuer}/revoke`);
      assert.equal(m.registration_endpoint, `${t.issuer}/register`);
      assert.deepEqual(m.grant_types_supported, [
        'client_credentials',
        'authorization_code',
        'refresh_token',
        'urn:ietf:params:oauth:grant-type:token-exchange',
        'urn:ietf:params:oauth:grant-type:jwt-bearer',
      ]);
      assert.deepEqual(m.token_endpoint_auth_methods_supported, [
        'client_secret_basic',
        'client_secret_post',
        'private_key_jwt',
        'tls_client_auth',
        'self_signed_tls_client_auth',
        'none',
      ]);
      assert.equal(m.tls_client_certificate_bound_access_tokens, true);
    }
  });

  test('client_secret_basic: token verifies with jose as an RFC 9068 access token', async () => {
    const reg = await t.register({
      client_name: 'orders-caller',
      audiences: [ORDERS, BILLING],
      scope: 'orders:read orders:write',
      roles: ['reader'],
    });
    const config = await configFor(reg.client_id, oidc.ClientSecretBasic(reg.client_secret));
    const res = await oidc.clientCredentialsGrant(config, { scope: 'orders:read', resource: ORDERS });
    assert.equal(res.token_type, 'bearer');
    assert.equal(res.expires_in, 300);
    assert.equal(res.scope, 'orders:read');
    const { payload, protectedHeader } = await verifyWithJose(res.access_token, ORDERS);
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(protectedHeader.alg, 'ES256');
    assert.deepEqual(Object.keys(payload).sort(), [
      'aud',
      'client_id',
      'exp',
      'iat',
      'iss',
      'jti',
      'roles',
      'scope',
      'status',
      'sub',
    ]);
    // Token Status List §6.2: a reference to one of this IdP's lists.
    const ref = (payload.status as { status_list: { idx: number; uri: string } }).status_list;
    assert.match(ref.uri, new RegExp(`^${t.issuer.replace(/[.]/g, '\\.')}/sl/\\d+$`));
    assert.ok(Number.isSafeInteger(ref.idx) && ref.idx >= 0);
    assert.equal(payload.sub, reg.client_id);
    assert.equal(payload.client_id, reg.client_id);
    assert.equal(payload.aud, ORDERS);
    assert.equal(payload.scope, 'orders:read');
    assert.deepEqual(payload.roles, ['reader']);
    assert.equal((payload.exp as number) - (payload.iat as number), 300);
  });

  test('client_secret_post, default audience, no scope: minimal token of at most 512 bytes', async (ctx) => {
    const reg = await t.register({ audiences: [ORDERS], token_endpoint_auth_method: 'client_secret_post' });
    const config = await configFor(reg.client_id, oidc.ClientSecretPost(reg.client_secret));
    const res = await oidc.clientCredentialsGrant(config);
    const { payload } = await verifyWithJose(res.access_token, ORDERS);
    assert.deepEqual(Object.keys(payload).sort(), ['aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'status', 'sub']);
    assert.equal(res.scope, undefined);
    ctx.diagnostic(`minimal service token with its status reference: ${res.access_token.length} bytes`);
    assert.ok(res.access_token.length <= 512, `token is ${res.access_token.length} bytes`);
  });

  test('a service token with one audience and one short scope: 512 bytes, and at most 540 with its status reference (ES256)', async (ctx) => {
    const reg = await t.register({
      client_id: 'orders-service',
      audiences: ['https://inventory.internal'],
      scope: 'stock:read',
    });
    const config = await configFor(reg.client_id, oidc.ClientSecretBasic(reg.client_secret));
    const res = await oidc.clientCredentialsGrant(config, { scope: 'stock:read' });
    ctx.diagnostic(`one audience, one scope, status reference: ${res.access_token.length} bytes`);
    // The Token Status List reference costs about 90 bytes (its URI names the issuer); without it
    // this token is within 512 bytes, with it within 540 (the minimal token above stays within 512).
    const [header, payload, signature] = res.access_token.split('.') as [string, string, string];
    const { status: _status, ...rest } = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const without =
      header.length + Buffer.from(JSON.stringify(rest)).toString('base64url').length + signature.length + 2;
    assert.ok(without <= 512, `without its status reference the token is ${without} bytes`);
    assert.ok(res.access_token.length <= 540, `token is ${res.access_token.length} bytes`);
  });

  test('private_key_jwt (RFC 7523) with openid-client, ES256 and EdDSA client keys', async () => {
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
      // Registered with alg EdDSA, while openid-client signs Ed25519 keys as RFC 9864's `Ed25519`.
      const jwk = { ...(await jose.exportJWK(publicKey)), kid: `k-${alg}`, alg };
      const reg = await t.register({
        audiences: [ORDERS],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [jwk] },
      });
      assert.equal(reg.client_secret, undefined);
      const config = await configFor(reg.client_id, oidc.PrivateKeyJwt({ key: privateKey, kid: jwk.kid }));
      const res = await oidc.clientCredentialsGrant(config, { resource: ORDERS });
      const { payload } = await verifyWithJose(res.access_token, ORDERS);
      assert.equal(payload.client_id, reg.client_id);
    }
  });

  test('private_key_jwt with a jwks_uri served over loopback', async () => {
    const { createServer } = await import('node:http');
    const { publicKey, privateKey } = await jose.generateKeyPair('ES256');
    const body = JSON.stringify({
      keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'remote-1', alg: 'ES256', use: 'sig' }],
    });
    let fetched = 0;
    const server = createServer((_req, res) => {
      fetched++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    // jwks_uri must be https unless the IdP itself runs without TLS (development), as here; a
    // loopback address is refused unless the operator allows it (LATCHKEY_OUTBOUND_ALLOW).
    const plain = await startTestIdp({ tls: false, config: { outboundAllow: ['127.0.0.1'] } });
    try {
      const jwksUri = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`;
      const reg = await plain.register({
        audiences: [ORDERS],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks_uri: jwksUri,
      });
      const config = await oidc.discovery(
        new URL(plain.issuer),
        reg.client_id,
        undefined,
        oidc.PrivateKeyJwt({ key: privateKey, kid: 'remote-1' }),
        { algorithm: 'oauth2', execute: [oidc.allowInsecureRequests] },
      );
      for (let i = 0; i < 3; i++) assert.ok((await oidc.clientCredentialsGrant(config)).access_token);
      assert.equal(fetched, 1, 'the JWKS is fetched once and cached');
    } finally {
      await plain.close();
      server.close();
    }
  });

  test('several resource parameters give a token for several audiences (RFC 8707 §2)', async () => {
    const reg = await t.register({ audiences: [ORDERS, BILLING] });
    const res = await t.post('/token', {
      grant_type: 'client_credentials',
      resource: [ORDERS, BILLING],
      client_id: reg.client_id,
      client_secret: 'x',
    });
    assert.equal(res.status, 401, 'wrong method for a basic client');
    const ok = await t.post(
      '/token',
      { grant_type: 'client_credentials', resource: [ORDERS, BILLING] },
      { authorization: `Basic ${Buffer.from(`${reg.client_id}:${reg.client_secret}`).toString('base64')}` },
    );
    assert.equal(ok.status, 200);
    const claims = jose.decodeJwt(ok.body.access_token);
    assert.deepEqual(claims.aud, [ORDERS, BILLING]);
    assert.equal(ok.headers.get('cache-control'), 'no-store');
    assert.equal(ok.headers.get('pragma'), 'no-cache');
  });

  test('introspection and revocation through openid-client', async () => {
    const caller = await t.register({ audiences: [ORDERS] });
    const rs = await t.register({ audiences: [BILLING] });
    const callerConfig = await configFor(caller.client_id, oidc.ClientSecretBasic(caller.client_secret));
    const rsConfig = await configFor(rs.client_id, oidc.ClientSecretBasic(rs.client_secret));
    const { access_token } = await oidc.clientCredentialsGrant(callerConfig);

    const active = await oidc.tokenIntrospection(rsConfig, access_token);
    assert.equal(active.active, true);
    assert.equal(active.client_id, caller.client_id);
    assert.equal(active.sub, caller.client_id);
    assert.equal(active.aud, ORDERS);
    assert.equal(active.iss, t.issuer);
    assert.equal(active.token_type, 'Bearer');

    await oidc.tokenRevocation(callerConfig, access_token);
    const after = await oidc.tokenIntrospection(rsConfig, access_token);
    assert.deepEqual({ ...after }, { active: false });
  });
});

describe('signing algorithms', () => {
  for (const alg of ['EdDSA', 'RS256'] as const) {
    test(`LATCHKEY_SIGNING_ALG=${alg} signs tokens jose verifies with ${alg}`, async () => {
      const t = await startTestIdp({ config: { signingAlg: alg } });
      try {
        const reg = await t.register({ audiences: [ORDERS] });
        const res = await t.post(
          '/token',
          { grant_type: 'client_credentials', client_id: reg.client_id, client_secret: reg.client_secret },
          {},
        );
        assert.equal(res.status, 401, 'basic client must not use post');
        const ok = await t.post(
          '/token',
          { grant_type: 'client_credentials' },
          { authorization: `Basic ${Buffer.from(`${reg.client_id}:${reg.client_secret}`).toString('base64')}` },
        );
        assert.equal(ok.status, 200);
        const jwks = jose.createRemoteJWKSet(new URL(`${t.issuer}/jwks`), {
          [jose.customFetch]: t.fetch as jose.FetchImplementation,
        });
        const { protectedHeader } = await jose.jwtVerify(ok.body.access_token, jwks, {
          issuer: t.issuer,
          audience: ORDERS,
          typ: 'at+jwt',
          algorithms: [alg],
        });
        assert.equal(protectedHeader.alg, alg);
      } finally {
        await t.close();
      }
    });
  }
});
