// Issue 16: a user's request travels user → gateway → orders → billing over real HTTP services
// using the SDK. Each hop exchanges the token it was called with (RFC 8693), the gateway starts a
// Transaction Token that every hop forwards unchanged, Cedar at the IdP decides who may act for
// whom, and Cedar at billing decides "only through orders".
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { createAuditQueue } from '@latchkey/sdk/audit';
import { type Authorizer, createAuthorizer } from '@latchkey/sdk/authorize';
import { createIdpConnection } from '@latchkey/sdk/connection';
import { requirePermission as expressPermission, requireToken as expressToken } from '@latchkey/sdk/express';
import { requireToken as fastifyToken } from '@latchkey/sdk/fastify';
import { authenticate, requirePermission, transactionOf, withTransaction } from '@latchkey/sdk/node';
import { createTokenClient, type TokenClient } from '@latchkey/sdk/token-client';
import { actorChain, createVerifier, type Verifier, type VerifyError } from '@latchkey/sdk/verify';
import { startTestIdp, type TestIdp, userTokens } from '@latchkey/testkit';

const APP = 'http://127.0.0.1/callback';
const PASSWORD = 'a quiet harbour at noon';
const GATEWAY = 'https://gateway.internal';
const ORDERS = 'https://orders.internal';
const BILLING = 'https://billing.internal';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

describe('a user request through gateway → orders → billing: act chain, Transaction Token, Cedar at each hop', () => {
  let t: TestIdp;
  let trustDomain: string;
  const secrets: Record<string, string> = {};
  const closers: (() => unknown)[] = [];
  const tokens: Record<string, TokenClient> = {};
  const verifiers: Record<string, Verifier> = {};
  let gatewayUrl = '';
  let ordersUrl = '';
  let billingUrl = '';
  let billingAuthz: Authorizer;

  const listen = async (server: Server): Promise<string> => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => server.close());
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  before(async () => {
    t = await startTestIdp();
    trustDomain = ((await (await t.fetch(`${t.issuer}/.well-known/openid-configuration`)).json()) as any)
      .transaction_token_audience;
    await t.register({
      client_id: 'web',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      redirect_uris: [APP],
      audiences: [GATEWAY],
      scope: 'orders:buy',
    });
    for (const id of ['gateway', 'orders', 'billing', 'reports'])
      secrets[id] = (
        await t.register({
          client_id: id,
          grant_types: ['client_credentials', EXCHANGE],
          audiences: [`https://${id}.internal`],
        })
      ).client_secret;
    await t.admin('/admin/users', { username: 'erin', password: PASSWORD, groups: ['eu'] });
    const published = await t.admin('/admin/policy', {
      schema: {
        'app.cedarschema': `entity Role;
entity Group;
entity User in [Role, Group];
entity Service in [Role];
type Txn = { id: String, sub: String, scope: String, requester: String, tctx?: { order: Long } };
type Delegation = { actors: Set<String>, caller: String, depth: Long, txn?: Txn };
namespace Billing {
  entity Invoice;
  action charge appliesTo { principal: [User, Service], resource: Invoice, context: Delegation };
}
namespace Orders {
  entity Order;
  action buy appliesTo { principal: [User, Service], resource: Order, context: Delegation };
}
`,
      },
      policies: {
        // At the IdP: who may act for whom, toward which audience.
        'gateway-for-users': `permit(principal == Latchkey::Client::"gateway", action == Latchkey::Action::"exchange", resource) when { context.subject_kind == "user" && context.subject_audiences.contains("${GATEWAY}") };`,
        'orders-to-billing': `permit(principal == Latchkey::Client::"orders", action == Latchkey::Action::"exchange", resource == Latchkey::Audience::"${BILLING}") when { context.caller == "gateway" };`,
        'reports-to-billing': `permit(principal == Latchkey::Client::"reports", action == Latchkey::Action::"exchange", resource == Latchkey::Audience::"${BILLING}");`,
        // At the services: what a user may do, and through whom.
        'users-buy':
          'permit(principal in Group::"eu", action == Orders::Action::"buy", resource) when { context.caller == "gateway" };',
        'billing-only-through-orders':
          'permit(principal in Group::"eu", action == Billing::Action::"charge", resource) when { context.caller == "orders" && context has txn && context.txn.scope == "orders:buy" };',
      },
      entities: [],
    });
    assert.equal(published.status, 201, await published.text());

    for (const [id, aud] of [
      ['gateway', GATEWAY],
      ['orders', ORDERS],
      ['billing', BILLING],
    ] as const) {
      const connection = createIdpConnection({
        issuer: t.issuer,
        fetch: t.fetch,
        credentials: { clientId: id, clientSecret: secrets[id] as string },
      });
      verifiers[id] = await createVerifier({ connection, audience: aud, maxActDepth: 3 });
      tokens[id] = createTokenClient({
        issuer: t.issuer,
        clientId: id,
        clientSecret: secrets[id] as string,
        fetch: t.fetch,
      });
    }
    tokens.reports = createTokenClient({
      issuer: t.issuer,
      clientId: 'reports',
      clientSecret: secrets.reports as string,
      fetch: t.fetch,
    });
    const auditOf = (id: string) =>
      createAuditQueue({
        issuer: t.issuer,
        fetch: t.fetch,
        credentials: { clientId: id, clientSecret: secrets[id] as string },
      });
    const billingAudit = auditOf('billing');
    const ordersAudit = auditOf('orders');
    closers.push(
      () => billingAudit.close(),
      () => ordersAudit.close(),
    );
    billingAuthz = await createAuthorizer({
      connection: createIdpConnection({
        issuer: t.issuer,
        fetch: t.fetch,
        credentials: { clientId: 'billing', clientSecret: secrets.billing as string },
      }),
      delegationContext: true,
      audit: billingAudit,
    });
    const ordersAuthz = await createAuthorizer({
      connection: createIdpConnection({
        issuer: t.issuer,
        fetch: t.fetch,
        credentials: { clientId: 'orders', clientSecret: secrets.orders as string },
      }),
      delegationContext: true,
      audit: ordersAudit,
    });
    closers.push(
      () => billingAuthz.close(),
      () => ordersAuthz.close(),
    );

    // billing: plain node:http; the Transaction Token is required.
    billingUrl = await listen(
      createServer(async (req, res) => {
        const claims = await authenticate(req, res, { verifier: verifiers.billing!, transactionToken: 'required' });
        if (!claims) return;
        const allowed = await requirePermission(req, res, claims, {
          authorizer: billingAuthz,
          action: 'Billing::Action::"charge"',
          resource: () => ({ type: 'Billing::Invoice', id: '7' }),
        });
        if (!allowed) return;
        const txn = transactionOf(req)!;
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            sub: claims.sub,
            client_id: claims.client_id,
            actors: actorChain(claims),
            txn: txn.claims.txn,
            tctx: txn.claims.tctx,
            token: txn.token,
          }),
        );
      }),
    );

    // orders: Express; the Transaction Token is required and forwarded as received.
    const o = express();
    o.post(
      '/buy',
      expressToken({ verifier: verifiers.orders!, transactionToken: 'required' }),
      expressPermission({
        authorizer: ordersAuthz,
        action: 'Orders::Action::"buy"',
        resource: () => ({ type: 'Orders::Order', id: '42' }),
      }),
      async (req, res) => {
        const bearer = (req.headers.authorization ?? '').slice(7);
        const call = tokens.orders!.fetchOnBehalf({ subjectToken: bearer, audience: BILLING });
        const r = await call(`${billingUrl}/charge`, { method: 'POST' });
        res.status(r.status).json(await r.json());
      },
    );
    ordersUrl = await listen(createServer(o));

    // gateway: Fastify; it starts the transaction from the user's token.
    const g: FastifyInstance = Fastify();
    g.post('/buy', { onRequest: fastifyToken({ verifier: verifiers.gateway! }) }, async (req, reply) => {
      const userToken = (req.headers.authorization ?? '').slice(7);
      const txn = await tokens.gateway!.transactionToken({
        subjectToken: userToken,
        scope: 'orders:buy',
        requestContext: { req_ip: req.ip },
        requestDetails: { order: 42 },
      });
      const claims = await verifiers.gateway!.verifyTransactionToken(txn);
      const call = tokens.gateway!.fetchOnBehalf({ subjectToken: userToken, audience: ORDERS });
      const r = await withTransaction({ token: txn, claims }, () => call(`${ordersUrl}/buy`, { method: 'POST' }));
      return reply.code(r.status).send(await r.json());
    });
    await g.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => g.close());
    gatewayUrl = `http://127.0.0.1:${(g.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const c of closers.reverse()) await c();
    for (const v of Object.values(verifiers)) v.close();
    await t?.close();
  });

  const signIn = async () =>
    (
      await userTokens(t, {
        clientId: 'web',
        redirectUri: APP,
        username: 'erin',
        password: PASSWORD,
        scope: 'openid orders:buy',
      })
    ).access_token;

  test('each hop sees the user, the chain and the same transaction; the audit trail follows it by txn', async () => {
    const userToken = await signIn();
    const res = await fetch(`${gatewayUrl}/buy`, { method: 'POST', headers: { authorization: `Bearer ${userToken}` } });
    const body = (await res.json()) as any;
    assert.equal(res.status, 200, JSON.stringify(body));
    const erin = (await (await t.admin('/admin/users/erin', undefined, 'GET')).json()) as any;
    assert.deepEqual([body.sub, body.client_id, body.actors], [erin.sub, 'orders', ['orders', 'gateway']]);
    assert.deepEqual(body.tctx, { order: 42 });
    const txn = await verifiers.billing!.verifyTransactionToken(body.token);
    assert.equal(txn.txn, body.txn);
    assert.equal(txn.req_wl, `spiffe://${trustDomain}/svc/gateway`, 'forwarded unchanged: still the gateway’s');
    let events: any[] = [];
    for (let i = 0; i < 100; i++) {
      events = (
        (await (
          await t.fetch(`${t.issuer}/admin/audit?txn=${encodeURIComponent(body.txn)}`, {
            headers: { authorization: `Bearer ${t.adminToken}` },
          })
        ).json()) as any
      ).events;
      if (events.filter((e: any) => e.type === 'authz.decision').length >= 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const seen = events.map((e: any) => [
      e.type,
      e.client_id,
      e.detail.chain,
      e.detail.requested_token_type?.split(':').at(-1),
    ]);
    assert.deepEqual(
      seen.filter((s) => s[0] === 'token.exchanged'),
      [
        ['token.exchanged', 'gateway', ['gateway'], 'txn_token'],
        ['token.exchanged', 'gateway', ['gateway'], 'access_token'],
        ['token.exchanged', 'orders', ['orders', 'gateway'], 'access_token'],
      ],
      'the Transaction Token, and the exchanges made within it',
    );
    assert.deepEqual(
      seen
        .filter((s) => s[0] === 'authz.decision')
        .map((s) => s[1])
        .sort(),
      ['billing', 'orders'],
      'each service’s decision, under the same txn',
    );
  });

  test('refused: without a Transaction Token, a Txn-Token as a bearer and a bearer as a Txn-Token, a tampered one, and billing reached not through orders', async () => {
    const userToken = await signIn();
    const viaGateway = await tokens.gateway!.exchange({ subjectToken: userToken, audience: ORDERS });
    const toBilling = await tokens.orders!.exchange({ subjectToken: viaGateway, audience: BILLING });
    const txn = await tokens.gateway!.transactionToken({ subjectToken: userToken, scope: 'orders:buy' });
    const charge = (headers: Record<string, string>) => fetch(`${billingUrl}/charge`, { method: 'POST', headers });
    const none = await charge({ authorization: `Bearer ${toBilling}` });
    assert.deepEqual([none.status, ((await none.json()) as any).error], [403, 'invalid_txn_token']);
    const swapped = await charge({ authorization: `Bearer ${txn}`, 'txn-token': toBilling });
    assert.equal(swapped.status, 401);
    assert.match(swapped.headers.get('www-authenticate') ?? '', /wrong_type/);
    const wrongHeader = await charge({ authorization: `Bearer ${toBilling}`, 'txn-token': toBilling });
    assert.deepEqual(await wrongHeader.json(), { error: 'invalid_txn_token', error_description: 'wrong_type' });
    const [h, p, s] = txn.split('.') as [string, string, string];
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), scope: 'orders:buy admin' })).toString('base64url')}.${s}`;
    const tampered = await charge({ authorization: `Bearer ${toBilling}`, 'txn-token': forged });
    assert.deepEqual(await tampered.json(), { error: 'invalid_txn_token', error_description: 'signature_invalid' });
    const ok = await charge({ authorization: `Bearer ${toBilling}`, 'txn-token': txn });
    assert.equal(ok.status, 200);
    // reports may call billing for the user (the IdP allows it), but billing's own policy wants orders.
    const viaReports = await tokens.reports!.exchange({ subjectToken: viaGateway, audience: BILLING });
    const denied = await charge({ authorization: `Bearer ${viaReports}`, 'txn-token': txn });
    assert.deepEqual([denied.status, ((await denied.json()) as any).error], [403, 'access_denied']);
    // The verifier's own bounds on the chain.
    const strict = await createVerifier({
      connection: createIdpConnection({ issuer: t.issuer, fetch: t.fetch }),
      audience: BILLING,
      maxActDepth: 1,
    });
    const picky = await createVerifier({
      connection: createIdpConnection({ issuer: t.issuer, fetch: t.fetch }),
      audience: BILLING,
      allowedActors: ['orders'],
    });
    // A service whose clock is past the Transaction Token's life (60 s, plus the 30 s skew).
    const later = await createVerifier({
      connection: createIdpConnection({ issuer: t.issuer, fetch: t.fetch }),
      audience: BILLING,
      clock: { now: () => Date.now() + 95_000 },
    });
    try {
      await assert.rejects(later.verifyTransactionToken(txn), (e: VerifyError) => e.code === 'token_expired');
      await assert.rejects(strict.verify(toBilling), (e: VerifyError) => e.code === 'delegation_refused');
      await assert.rejects(
        picky.verify(toBilling),
        (e: VerifyError) => e.code === 'delegation_refused' && /gateway/.test(e.message),
      );
      assert.equal((await strict.verifyTransactionToken(txn)).txn.length, 36, 'one requester: within the bound');
    } finally {
      strict.close();
      picky.close();
      later.close();
    }
  });

  test("revoking the user's token: every token derived from it, and its Transaction Token, are refused at the services within a second", async () => {
    const userToken = await signIn();
    const viaGateway = await tokens.gateway!.exchange({ subjectToken: userToken, audience: ORDERS });
    const toBilling = await tokens.orders!.exchange({ subjectToken: viaGateway, audience: BILLING });
    const txn = await tokens.gateway!.transactionToken({ subjectToken: userToken, scope: 'orders:buy' });
    await verifiers.billing!.verify(toBilling);
    await verifiers.billing!.verifyTransactionToken(txn);
    assert.equal((await t.post('/revoke', { token: userToken, client_id: 'web' })).status, 200);
    const started = Date.now();
    let refused: unknown;
    while (!refused && Date.now() - started < 1000) {
      refused = await verifiers.billing!.verify(toBilling).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (!refused) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((refused as VerifyError)?.code, 'token_revoked', 'refused within a second');
    await assert.rejects(verifiers.orders!.verify(viaGateway), (e: VerifyError) => e.code === 'token_revoked');
    await assert.rejects(
      verifiers.billing!.verifyTransactionToken(txn),
      (e: VerifyError) => e.code === 'token_revoked',
    );
    await assert.rejects(
      tokens.orders!.exchange({ subjectToken: viaGateway, audience: BILLING, scope: 'orders:buy' }),
      /invalid_request/,
    );
  });
});
