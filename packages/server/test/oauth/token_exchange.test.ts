import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { auditEvents, basicAuth, FakeClock, startTestIdp, type TestIdp, userTokens } from '@latchkey/testkit';

const APP = 'http://127.0.0.1/callback';
const PASSWORD = 'lantern by the north gate';
const GATEWAY = 'https://gateway.internal';
const ORDERS = 'https://orders.internal';
const BILLING = 'https://billing.internal';
const LEDGER = 'https://ledger.internal';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT = 'urn:ietf:params:oauth:token-type:access_token';
const TXN = 'urn:ietf:params:oauth:token-type:txn_token';

describe('token exchange (RFC 8693) and Transaction Tokens, decided by Cedar', () => {
  let t: TestIdp;
  let clock: FakeClock;
  let trustDomain: string;
  let alice: Record<string, any>;
  const secrets: Record<string, string> = {};
  let jwks: ReturnType<typeof jose.createRemoteJWKSet>;

  /** A service's token exchange, driven by openid-client as a generic OAuth client. */
  async function exchange(service: string, params: Record<string, string>) {
    const config = await oidc.discovery(
      new URL(t.issuer),
      service,
      undefined,
      oidc.ClientSecretBasic(secrets[service] as string),
      { [oidc.customFetch]: t.fetch as oidc.CustomFetch },
    );
    config[oidc.customFetch] = t.fetch as oidc.CustomFetch;
    return oidc.genericGrantRequest(config, EXCHANGE, params);
  }
  /** The same request, raw, for the error cases (status and body). */
  const raw = (service: string, params: Record<string, string>) =>
    t.post(
      '/token',
      { grant_type: EXCHANGE, ...params },
      { authorization: basicAuth(service, secrets[service] as string) },
    );
  const signIn = async () =>
    (
      await userTokens(t, {
        clientId: 'web',
        redirectUri: APP,
        username: 'alice',
        password: PASSWORD,
        scope: 'openid orders:read orders:write',
      })
    ).access_token;

  before(async () => {
    clock = new FakeClock(Date.now());
    t = await startTestIdp({ clock, config: { maxActDepth: 3 } });
    trustDomain = ((await (await t.fetch(`${t.issuer}/.well-known/openid-configuration`)).json()) as any)
      .transaction_token_audience;
    await t.register({
      client_id: 'web',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      redirect_uris: [APP],
      audiences: [GATEWAY],
      scope: 'orders:read orders:write',
    });
    for (const id of ['gateway', 'orders', 'billing', 'intruder', 'portal'])
      secrets[id] = (
        await t.register({
          client_id: id,
          grant_types: ['client_credentials', EXCHANGE],
          audiences: [`https://${id}.internal`],
        })
      ).client_secret;
    secrets.plain = (await t.register({ client_id: 'plain', audiences: [ORDERS] })).client_secret;
    alice = await (
      await t.admin('/admin/users', { username: 'alice', password: PASSWORD, roles: ['buyer'], groups: ['eu'] })
    ).json();
    const published = await t.admin('/admin/policy', {
      schema: { 'base.cedarschema': 'entity Role;\n' },
      policies: {
        'gateway-for-users': `permit(principal == Latchkey::Client::"gateway", action == Latchkey::Action::"exchange", resource == Latchkey::Audience::"${ORDERS}") when { context.subject_kind == "user" && context.subject_audiences.contains("${GATEWAY}") };`,
        'orders-to-billing-via-gateway': `permit(principal == Latchkey::Client::"orders", action == Latchkey::Action::"exchange", resource == Latchkey::Audience::"${BILLING}") when { context.caller == "gateway" };`,
        'portal-with-id-tokens': `permit(principal == Latchkey::Client::"portal", action == Latchkey::Action::"exchange", resource == Latchkey::Audience::"${ORDERS}") when { context.subject_kind == "user" && context.subject_client == "web" };`,
        'billing-to-ledger': `permit(principal == Latchkey::Client::"billing", action == Latchkey::Action::"exchange", resource == Latchkey::Audience::"${LEDGER}");`,
        'gateway-starts-transactions': `permit(principal == Latchkey::Client::"gateway", action == Latchkey::Action::"exchange", resource == Latchkey::Audience::"${trustDomain}") when { context.requested_token_type == "txn_token" && context.subject_kind == "user" };`,
        'orders-replaces-them': `permit(principal == Latchkey::Client::"orders", action == Latchkey::Action::"exchange", resource == Latchkey::Audience::"${trustDomain}") when { context.caller == "gateway" };`,
      },
      entities: [],
    });
    assert.equal(published.status, 201, await published.text());
    jwks = jose.createRemoteJWKSet(new URL(`${t.issuer}/jwks`), {
      [jose.customFetch]: t.fetch as jose.FetchImplementation,
    });
  });
  after(() => t.close());

  test('discovery names the grant and the Transaction Token audience', async () => {
    const m = (await (await t.fetch(`${t.issuer}/.well-known/openid-configuration`)).json()) as any;
    assert.ok(m.grant_types_supported.includes(EXCHANGE));
    assert.equal(typeof m.transaction_token_audience, 'string');
  });

  test('user → gateway → orders: sub stays the user, act nests the services, scope narrows, life never longer', async () => {
    const userToken = await signIn();
    const userClaims = jose.decodeJwt(userToken);
    const first = await exchange('gateway', {
      subject_token: userToken,
      subject_token_type: AT,
      audience: ORDERS,
      scope: 'orders:read',
    });
    assert.equal(first.issued_token_type, AT);
    assert.equal(first.token_type.toLowerCase(), 'bearer');
    const a = (await jose.jwtVerify(first.access_token, jwks, { issuer: t.issuer, audience: ORDERS, typ: 'at+jwt' }))
      .payload;
    assert.deepEqual(
      [a.sub, a.client_id, a.act, a.scope, a.groups, a.origin_jti],
      [alice.sub, 'gateway', { sub: 'gateway' }, 'orders:read', ['eu'], userClaims.jti],
    );
    assert.ok((a.exp as number) <= (userClaims.exp as number));
    const second = await exchange('orders', {
      subject_token: first.access_token,
      subject_token_type: AT,
      resource: BILLING,
    });
    const b = (await jose.jwtVerify(second.access_token, jwks, { issuer: t.issuer, audience: BILLING })).payload;
    assert.deepEqual(
      [b.sub, b.client_id, b.act, b.scope],
      [alice.sub, 'orders', { sub: 'orders', act: { sub: 'gateway' } }, 'orders:read'],
    );
    assert.equal(b.origin_jti, userClaims.jti, 'the chain remembers where it started');
    const events = await auditEvents(t.idp.storage, { type: 'token.exchanged' });
    const last = events.at(-1);
    assert.deepEqual(
      [last?.subject, last?.client_id, last?.detail?.chain, last?.detail?.aud, last?.detail?.policies],
      [alice.sub, 'orders', ['orders', 'gateway'], BILLING, ['orders-to-billing-via-gateway']],
    );
  });

  test('an ID token as the subject (no scope: it grants none), and an actor token standing for the client', async () => {
    const signedIn = await userTokens(t, {
      clientId: 'web',
      redirectUri: APP,
      username: 'alice',
      password: PASSWORD,
      scope: 'openid orders:read',
    });
    const ID = 'urn:ietf:params:oauth:token-type:id_token';
    const r = await exchange('portal', {
      subject_token: signedIn.id_token as string,
      subject_token_type: ID,
      audience: ORDERS,
    });
    const p = jose.decodeJwt(r.access_token);
    assert.deepEqual(
      [p.sub, p.client_id, p.act, p.scope, p.groups],
      [alice.sub, 'portal', { sub: 'portal' }, undefined, ['eu']],
    );
    const scoped = await raw('portal', {
      subject_token: signedIn.id_token as string,
      subject_token_type: ID,
      audience: ORDERS,
      scope: 'orders:read',
    });
    assert.deepEqual([scoped.status, scoped.body.error], [400, 'invalid_scope']);
    const own = (
      await t.post(
        '/token',
        { grant_type: 'client_credentials' },
        { authorization: basicAuth('gateway', secrets.gateway as string) },
      )
    ).body.access_token as string;
    const withActor = await exchange('gateway', {
      subject_token: signedIn.access_token,
      subject_token_type: AT,
      actor_token: own,
      actor_token_type: AT,
      audience: ORDERS,
    });
    assert.equal(jose.decodeJwt(withActor.access_token).client_id, 'gateway');
    const notMine = await raw('orders', {
      subject_token: signedIn.access_token,
      subject_token_type: AT,
      actor_token: own,
      actor_token_type: AT,
      audience: BILLING,
    });
    assert.deepEqual([notMine.status, notMine.body.error], [400, 'invalid_request']);
  });

  test('refused per RFC 8693: no permit → invalid_target (audited), wider scope → invalid_scope, deeper than the limit → invalid_request', async () => {
    const userToken = await signIn();
    const notAllowed = await raw('gateway', { subject_token: userToken, subject_token_type: AT, audience: BILLING });
    assert.deepEqual([notAllowed.status, notAllowed.body.error], [400, 'invalid_target']);
    const intruder = await raw('intruder', { subject_token: userToken, subject_token_type: AT, audience: ORDERS });
    assert.deepEqual(
      [intruder.status, intruder.body.error],
      [400, 'invalid_target'],
      'a service not allowed to act for users',
    );
    const failed = (await auditEvents(t.idp.storage, { type: 'token.request_failed' })).at(-1);
    assert.deepEqual(
      [failed?.client_id, failed?.reason, failed?.detail?.grant_type],
      ['intruder', 'invalid_target', EXCHANGE],
    );
    const wider = await raw('gateway', {
      subject_token: userToken,
      subject_token_type: AT,
      audience: ORDERS,
      scope: 'orders:read admin',
    });
    assert.deepEqual([wider.status, wider.body.error], [400, 'invalid_scope']);
    // Chain gateway → orders → billing is 3 deep (the limit); billing acting once more would be 4.
    const g = await exchange('gateway', { subject_token: userToken, subject_token_type: AT, audience: ORDERS });
    const o = await exchange('orders', { subject_token: g.access_token, subject_token_type: AT, audience: BILLING });
    const bl = await exchange('billing', { subject_token: o.access_token, subject_token_type: AT, audience: LEDGER });
    assert.deepEqual(jose.decodeJwt(bl.access_token).act, {
      sub: 'billing',
      act: { sub: 'orders', act: { sub: 'gateway' } },
    });
    const deeper = await raw('billing', { subject_token: bl.access_token, subject_token_type: AT, audience: LEDGER });
    assert.deepEqual([deeper.status, deeper.body.error], [400, 'invalid_request']);
    assert.match(deeper.body.error_description, /at most 3 may act/);
    const notRegistered = await raw('plain', { subject_token: userToken, subject_token_type: AT, audience: ORDERS });
    assert.deepEqual([notRegistered.status, notRegistered.body.error], [400, 'unauthorized_client']);
  });

  test('bad subject tokens are invalid_request (RFC 8693 §2.2.2): malformed, tampered, wrong type, a refresh type, an actor token without its type, expired', async () => {
    const userToken = await signIn();
    const [h, p, s] = userToken.split('.') as [string, string, string];
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...jose.decodeJwt(userToken), scope: 'orders:read admin' })).toString('base64url')}.${s}`;
    const cases: Record<string, string>[] = [
      { subject_token: 'not-a-jwt', subject_token_type: AT },
      { subject_token: tampered, subject_token_type: AT },
      { subject_token: userToken, subject_token_type: TXN },
      { subject_token: userToken, subject_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' },
      { subject_token: userToken },
      { subject_token: userToken, subject_token_type: AT, actor_token: userToken },
      { subject_token: userToken, subject_token_type: AT, actor_token: userToken, actor_token_type: AT },
      { subject_token: `${h}.${p}`, subject_token_type: AT },
    ];
    for (const params of cases) {
      const r = await raw('gateway', { ...params, audience: ORDERS });
      assert.deepEqual([r.status, r.body.error], [400, 'invalid_request'], JSON.stringify(Object.keys(params)));
    }
    clock.advance(301_000 + 30_000);
    const expired = await raw('gateway', { subject_token: userToken, subject_token_type: AT, audience: ORDERS });
    assert.deepEqual([expired.status, expired.body.error], [400, 'invalid_request']);
    assert.match(expired.body.error_description, /expired/);
  });

  test('revoking the user token the chain started from: the exchange fails and every token derived from it is inactive', async () => {
    const userToken = await signIn();
    const g = await exchange('gateway', { subject_token: userToken, subject_token_type: AT, audience: ORDERS });
    const o = await exchange('orders', { subject_token: g.access_token, subject_token_type: AT, audience: BILLING });
    const introspect = async (token: string) =>
      (await t.post('/introspect', { token }, { authorization: basicAuth('billing', secrets.billing as string) })).body
        .active;
    assert.equal(await introspect(o.access_token), true);
    assert.equal((await t.post('/revoke', { token: userToken, client_id: 'web' })).status, 200);
    assert.equal(await introspect(g.access_token), false);
    assert.equal(await introspect(o.access_token), false);
    const again = await raw('gateway', { subject_token: userToken, subject_token_type: AT, audience: ORDERS });
    assert.deepEqual([again.status, again.body.error], [400, 'invalid_request']);
    assert.match(again.body.error_description, /revoked/);
  });

  test('a Transaction Token: typ txntoken+jwt, aud the trust domain, txn, req_wl, tctx and rctx; a replacement keeps txn, sub and tctx and records the requester', async () => {
    const userToken = await signIn();
    const r = await exchange('gateway', {
      subject_token: userToken,
      subject_token_type: AT,
      requested_token_type: TXN,
      audience: trustDomain,
      scope: 'orders:write',
      request_context: JSON.stringify({ req_ip: '203.0.113.7', authn: 'pwd' }),
      request_details: JSON.stringify({ action: 'BUY', order: 42 }),
    });
    assert.deepEqual([r.issued_token_type, r.token_type], [TXN, 'n_a']);
    assert.equal(r.refresh_token, undefined);
    const { payload, protectedHeader } = await jose.jwtVerify(r.access_token, jwks, {
      issuer: t.issuer,
      audience: trustDomain,
      typ: 'txntoken+jwt',
    });
    assert.equal(protectedHeader.typ, 'txntoken+jwt');
    assert.deepEqual(
      [payload.sub, payload.scope, payload.req_wl, payload.tctx, payload.rctx, payload.act],
      [
        alice.sub,
        'orders:write',
        `spiffe://${trustDomain}/svc/gateway`,
        { action: 'BUY', order: 42 },
        { req_ip: '203.0.113.7', authn: 'pwd' },
        undefined,
      ],
    );
    assert.match(payload.txn as string, /^[0-9a-f-]{36}$/);
    assert.ok((payload.exp as number) - (payload.iat as number) <= 60);
    // Not an access token: refused where one is expected.
    assert.equal(
      (
        await t.post(
          '/introspect',
          { token: r.access_token },
          { authorization: basicAuth('orders', secrets.orders as string) },
        )
      ).body.active,
      false,
    );
    const asAccess = await raw('orders', { subject_token: r.access_token, subject_token_type: AT, audience: BILLING });
    assert.equal(asAccess.body.error, 'invalid_request');

    const replaced = await exchange('orders', {
      subject_token: r.access_token,
      subject_token_type: TXN,
      requested_token_type: TXN,
      audience: trustDomain,
      scope: 'orders:write',
      request_details: JSON.stringify({ action: 'SELL', order: 1 }),
    });
    const p2 = jose.decodeJwt(replaced.access_token);
    assert.deepEqual(
      [p2.txn, p2.sub, p2.aud, p2.tctx, p2.req_wl, p2.act],
      [
        payload.txn,
        alice.sub,
        trustDomain,
        { action: 'BUY', order: 42 },
        `spiffe://${trustDomain}/svc/orders`,
        { sub: 'gateway' },
      ],
    );
    const wider = await raw('orders', {
      subject_token: r.access_token,
      subject_token_type: TXN,
      requested_token_type: TXN,
      audience: trustDomain,
      scope: 'orders:read',
    });
    assert.deepEqual([wider.status, wider.body.error], [400, 'invalid_scope'], 'a replacement never widens');
    const elsewhere = await raw('gateway', {
      subject_token: userToken,
      subject_token_type: AT,
      requested_token_type: TXN,
      audience: ORDERS,
      scope: 'orders:write',
    });
    assert.deepEqual([elsewhere.status, elsewhere.body.error], [400, 'invalid_target']);
    const noScope = await raw('gateway', {
      subject_token: userToken,
      subject_token_type: AT,
      requested_token_type: TXN,
      audience: trustDomain,
    });
    assert.deepEqual([noScope.status, noScope.body.error], [400, 'invalid_request']);
    const badJson = await raw('gateway', {
      subject_token: userToken,
      subject_token_type: AT,
      requested_token_type: TXN,
      audience: trustDomain,
      scope: 'orders:write',
      request_details: '[1,2]',
    });
    assert.deepEqual([badJson.status, badJson.body.error], [400, 'invalid_request']);
    const byTxn = await auditEvents(t.idp.storage, { type: 'token.exchanged' });
    assert.deepEqual(
      byTxn.filter((e) => e.detail?.txn === payload.txn).map((e) => [e.client_id, e.detail?.chain]),
      [
        ['gateway', ['gateway']],
        ['orders', ['orders', 'gateway']],
      ],
    );
  });
});
