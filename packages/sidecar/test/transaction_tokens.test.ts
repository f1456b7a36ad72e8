// Issue 16, sidecar: at the edge the sidecar mints a Transaction Token for each allowed request
// (replacing any from outside); on an inner hop it requires one, verifies it and forwards it
// unchanged, and Cedar sees the transaction.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { stringify } from 'yaml';
import { basicAuth, startTestIdp, type TestIdp } from '@latchkey/testkit';
import { loadSidecarConfig } from '../src/config/load_sidecar_config.ts';
import { type RunningSidecar, startSidecar } from '../src/sidecar.ts';

const EDGE = 'https://edge.internal';
const INNER = 'https://inner.internal';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

describe('the sidecar and Transaction Tokens: minted at the edge, required and forwarded unchanged inside', () => {
  let t: TestIdp;
  let trustDomain: string;
  let upstream: Server;
  let upstreamUrl = '';
  const sidecars: RunningSidecar[] = [];
  const secrets: Record<string, string> = {};
  let edge = '';
  let inner = '';
  let jwks: ReturnType<typeof jose.createRemoteJWKSet>;

  const start = async (clientId: string, audience: string, routes: unknown[]) => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-sidecar-txn-'));
    if (t.caPem) writeFileSync(join(dir, 'idp-ca.pem'), t.caPem);
    const file = join(dir, 'sidecar.yaml');
    writeFileSync(
      file,
      stringify({
        idp: { issuer: t.issuer, client_id: clientId, ...(t.caPem ? { ca_file: join(dir, 'idp-ca.pem') } : {}) },
        audience,
        routes,
        delegation_context: true,
        proxy: { listen: { host: '127.0.0.1', port: 0 }, upstream: upstreamUrl },
      }),
    );
    const s = await startSidecar(loadSidecarConfig(file, { LATCHKEY_SIDECAR_CLIENT_SECRET: secrets[clientId] }), {
      logger: false,
    });
    sidecars.push(s);
    return s.proxyUrl as string;
  };
  const token = async (client: string, audience: string) =>
    (
      await t.post(
        '/token',
        { grant_type: 'client_credentials', resource: audience },
        { authorization: basicAuth(client, secrets[client] as string) },
      )
    ).body.access_token as string;

  before(async () => {
    t = await startTestIdp();
    trustDomain = ((await (await t.fetch(`${t.issuer}/.well-known/openid-configuration`)).json()) as any)
      .transaction_token_audience;
    upstream = createServer((req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(req.headers)),
    );
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    secrets['edge-svc'] = (
      await t.register({ client_id: 'edge-svc', grant_types: ['client_credentials', EXCHANGE], audiences: [EDGE] })
    ).client_secret;
    secrets['inner-svc'] = (await t.register({ client_id: 'inner-svc', audiences: [INNER] })).client_secret;
    secrets.checkout = (
      await t.register({ client_id: 'checkout', audiences: [EDGE, INNER], scope: 'orders:read' })
    ).client_secret;
    const published = await t.admin('/admin/policy', {
      schema: {
        's.cedarschema': `entity Service;
type Txn = { id: String, sub: String, scope: String, requester: String, tctx?: { method: String, path: String } };
namespace Orders {
  entity Order;
  action read appliesTo { principal: Service, resource: Order, context: { actors: Set<String>, caller: String, depth: Long, txn?: Txn } };
}
`,
      },
      policies: {
        'the edge starts transactions': `permit(principal == Latchkey::Client::"edge-svc", action == Latchkey::Action::"exchange", resource == Latchkey::Audience::"${trustDomain}") when { context.requested_token_type == "txn_token" };`,
        'reads within a transaction':
          'permit(principal, action == Orders::Action::"read", resource) when { context has txn && context.txn.scope == "orders:read" };',
        'reads at the edge':
          'permit(principal == Service::"checkout", action == Orders::Action::"read", resource == Orders::Order::"edge");',
      },
      entities: [],
    });
    assert.equal(published.status, 201, await published.text());
    edge = await start('edge-svc', EDGE, [
      {
        methods: 'GET',
        path: '/orders/:id',
        action: 'Orders::Action::"read"',
        resource: { type: 'Orders::Order', id: { value: 'edge' } },
        transaction_token: 'mint',
      },
    ]);
    inner = await start('inner-svc', INNER, [
      {
        methods: 'GET',
        path: '/orders/:id',
        action: 'Orders::Action::"read"',
        resource: { type: 'Orders::Order', id: { param: 'id' } },
        transaction_token: 'require',
      },
    ]);
    jwks = jose.createRemoteJWKSet(new URL(`${t.issuer}/jwks`), {
      [jose.customFetch]: t.fetch as jose.FetchImplementation,
    });
  });
  after(async () => {
    for (const s of sidecars) await s.close();
    upstream?.close();
    await t?.close();
  });

  test('the edge mints one per allowed request, replacing any from outside; the inner hop verifies it, Cedar sees it, and it is forwarded unchanged', async () => {
    const caller = await token('checkout', EDGE);
    const res = await fetch(`${edge}/orders/1`, {
      headers: { authorization: `Bearer ${caller}`, 'txn-token': 'forged-from-outside' },
    });
    assert.equal(res.status, 200);
    const seen = (await res.json()) as Record<string, string>;
    const minted = seen['txn-token'] as string;
    assert.notEqual(minted, 'forged-from-outside');
    const { payload } = await jose.jwtVerify(minted, jwks, {
      issuer: t.issuer,
      audience: trustDomain,
      typ: 'txntoken+jwt',
    });
    assert.deepEqual(
      [payload.sub, payload.scope, payload.req_wl, payload.tctx, seen['x-latchkey-txn']],
      [
        'checkout',
        'orders:read',
        `spiffe://${trustDomain}/svc/edge-svc`,
        { method: 'GET', path: '/orders/1' },
        payload.txn,
      ],
    );

    const innerCaller = await token('checkout', INNER);
    const within = await fetch(`${inner}/orders/2`, {
      headers: { authorization: `Bearer ${innerCaller}`, 'txn-token': minted },
    });
    assert.equal(within.status, 200);
    const forwarded = (await within.json()) as Record<string, string>;
    assert.equal(forwarded['txn-token'], minted, 'forwarded byte for byte');
    assert.equal(forwarded['x-latchkey-txn'], payload.txn);
  });

  test('the inner hop refuses: no Transaction Token, a tampered one, an access token in its place; Cedar denies without one', async () => {
    const innerCaller = await token('checkout', INNER);
    const call = (headers: Record<string, string>) =>
      fetch(`${inner}/orders/3`, { headers: { authorization: `Bearer ${innerCaller}`, ...headers } });
    const none = await call({});
    assert.deepEqual([none.status, ((await none.json()) as any).error], [403, 'invalid_txn_token']);
    const asTxn = await call({ 'txn-token': innerCaller });
    assert.deepEqual(await asTxn.json(), { error: 'invalid_txn_token', error_description: 'wrong_type' });
    const caller = await token('checkout', EDGE);
    const minted = (
      (await (await fetch(`${edge}/orders/4`, { headers: { authorization: `Bearer ${caller}` } })).json()) as any
    )['txn-token'] as string;
    const [h, p, s] = minted.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'orders:write' })).toString('base64url')}.${s}`;
    const bad = await call({ 'txn-token': tampered });
    assert.deepEqual(await bad.json(), { error: 'invalid_txn_token', error_description: 'signature_invalid' });
    // An access token where the Txn-Token should be, and the other way round at the edge.
    const swapped = await fetch(`${edge}/orders/5`, { headers: { authorization: `Bearer ${minted}` } });
    assert.equal(swapped.status, 401);
  });
});
