import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { type Estate, startEstate } from './sidecar_fixture.ts';

// Envoy's own API definitions (envoyproxy/data-plane-api, as shipped in @grpc/grpc-js-xds), not the sidecar's copy.
const DEPS = fileURLToPath(new URL('../../../node_modules/@grpc/grpc-js-xds/deps', import.meta.url));
const definition = protoLoader.loadSync('envoy/service/auth/v3/external_auth.proto', {
  keepCase: true,
  enums: String,
  oneofs: true,
  includeDirs: ['envoy-api', 'googleapis', 'xds', 'protoc-gen-validate'].map((d) => `${DEPS}/${d}`),
});
const Authorization = (
  grpc.loadPackageDefinition(definition) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
  }
).envoy.service.auth.v3.Authorization;

type Check = (request: object) => Promise<any>;

/** A CheckRequest as Envoy's HTTP filter sends one (pseudo-headers in the header map, the peer from mTLS). */
function envoyCheck(
  path: string,
  headers: Record<string, string>,
  extra: { principal?: string; extensions?: Record<string, string>; method?: string } = {},
) {
  const method = extra.method ?? 'GET';
  return {
    attributes: {
      source: {
        address: { socket_address: { address: '127.0.0.7', port_value: 51234 } },
        ...(extra.principal ? { principal: extra.principal } : {}),
      },
      destination: {
        address: { socket_address: { address: '127.0.0.1', port_value: 8080 } },
        principal: 'spiffe://cluster.local/ns/shop/sa/orders',
      },
      request: {
        time: { seconds: Math.floor(Date.now() / 1000), nanos: 0 },
        http: {
          id: 'a1b2c3',
          method,
          headers: { ':authority': 'orders.shop', ':method': method, ':path': path, ':scheme': 'https', ...headers },
          path,
          host: 'orders.shop',
          scheme: 'https',
          protocol: 'HTTP/2',
          size: '-1',
        },
      },
      context_extensions: extra.extensions ?? {},
    },
  };
}

describe('Envoy external authorization: gRPC (Authorization/Check) with Envoy’s own protos, and the HTTP variant', () => {
  let e: Estate;
  let client: grpc.Client;
  let check: Check;
  let checkout: string;

  before(async () => {
    e = await startEstate();
    client = new Authorization(e.sidecar.grpcAddress as string, grpc.credentials.createInsecure());
    check = (request) =>
      new Promise((resolve, reject) =>
        (client as unknown as { Check: (r: object, cb: (err: unknown, res: unknown) => void) => void }).Check(
          request,
          (err, res) => (err ? reject(err) : resolve(res)),
        ),
      );
    checkout = await e.token('checkout');
  });
  after(async () => {
    client?.close();
    await e?.close();
  });

  test('OK with the identity headers to set and the credentials and forged headers to remove', async () => {
    const r = await check(
      envoyCheck('/tenants/acme/orders/1?x=1', {
        authorization: `Bearer ${checkout}`,
        'x-latchkey-sub': 'admin',
        'x-latchkey-extra': 'forged',
      }),
    );
    assert.equal(r.status.code, 0);
    assert.equal(r.http_response, 'ok_response');
    const set = Object.fromEntries(r.ok_response.headers.map((h: any) => [h.header.key, h.header.value]));
    assert.equal(set['x-latchkey-sub'], 'checkout');
    assert.equal(set['x-latchkey-client-id'], 'checkout');
    assert.equal(set['x-latchkey-roles'], 'reader');
    for (const h of r.ok_response.headers) assert.equal(h.append_action, 'OVERWRITE_IF_EXISTS_OR_ADD');
    assert.deepEqual(r.ok_response.headers_to_remove.sort(), ['authorization', 'x-latchkey-extra']);
  });

  test('DENIED with the HTTP status, WWW-Authenticate and body Envoy answers with', async () => {
    const anonymous = await check(envoyCheck('/tenants/acme/orders/1', {}));
    assert.equal(anonymous.status.code, 16);
    assert.equal(anonymous.denied_response.status.code, 'Unauthorized');
    const headers = Object.fromEntries(
      anonymous.denied_response.headers.map((h: any) => [h.header.key, h.header.value]),
    );
    assert.match(headers['www-authenticate'], /^Bearer realm=/);
    assert.equal(JSON.parse(anonymous.denied_response.body).error, 'invalid_token');
    const other = await check(envoyCheck('/tenants/other/orders/1', { authorization: `Bearer ${checkout}` }));
    assert.equal(other.status.code, 7);
    assert.equal(other.denied_response.status.code, 'Forbidden');
    const unmatched = await check(envoyCheck('/admin', { authorization: `Bearer ${checkout}` }));
    assert.equal(unmatched.denied_response.status.code, 'Forbidden');
    const ambiguous = await check(
      envoyCheck('/tenants/acme/orders/%2e%2e/admin', { authorization: `Bearer ${checkout}` }),
    );
    assert.equal(ambiguous.denied_response.status.code, 'BadRequest');
    const empty = await check({});
    assert.notEqual(empty.status.code, 0, 'fail closed on a request without attributes');
  });

  test('context extensions and the mTLS peer principal reach the decision', async () => {
    const auth = { authorization: `Bearer ${checkout}` };
    assert.equal((await check(envoyCheck('/ext/orders/5', auth, { extensions: { tenant: 'acme' } }))).status.code, 0);
    assert.equal((await check(envoyCheck('/ext/orders/5', auth, { extensions: { tenant: 'evil' } }))).status.code, 7);
    assert.equal((await check(envoyCheck('/ext/orders/5', auth))).status.code, 7, 'no extension: no tenant, no permit');
    const trust = new URL(e.t.issuer).hostname;
    const peer = `spiffe://${trust}/svc/checkout`;
    const ok = await check(envoyCheck('/peer/tenants/acme', {}, { principal: peer }));
    assert.equal(ok.status.code, 0);
    const set = Object.fromEntries(ok.ok_response.headers.map((h: any) => [h.header.key, h.header.value]));
    assert.equal(set['x-latchkey-peer'], peer);
    assert.equal((await check(envoyCheck('/peer/tenants/evil', {}, { principal: peer }))).status.code, 7);
    assert.equal((await check(envoyCheck('/peer/tenants/acme', {}))).status.code, 16, 'no peer certificate');
    assert.equal(
      (await check(envoyCheck('/peer/tenants/acme', {}, { principal: 'spiffe://x/ns/a/sa/b' }))).status.code,
      16,
    );
  });

  test('HTTP ext_authz: 200 with identity and x-envoy-auth-headers-to-remove, or the denial itself', async () => {
    const base = `${e.sidecar.url}/ext_authz`;
    const ok = await fetch(`${base}/tenants/acme/orders/1`, {
      headers: { authorization: `Bearer ${checkout}`, 'x-latchkey-roles': 'admin', 'x-forwarded-for': '127.0.0.7' },
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-latchkey-sub'), 'checkout');
    assert.equal(ok.headers.get('x-latchkey-roles'), 'reader');
    assert.equal(ok.headers.get('x-envoy-auth-headers-to-remove'), 'authorization');
    const denied = await fetch(`${base}/tenants/other/orders/1`, { headers: { authorization: `Bearer ${checkout}` } });
    assert.equal(denied.status, 403);
    assert.equal(((await denied.json()) as { error: string }).error, 'access_denied');
    const anonymous = await fetch(`${base}/tenants/acme/orders/1`, { method: 'DELETE' });
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer /);
  });

  test('a revocation at the IdP is enforced by gRPC Check within a second', async () => {
    const token = await e.token('checkout');
    assert.equal(
      (await check(envoyCheck('/tenants/acme/orders/1', { authorization: `Bearer ${token}` }))).status.code,
      0,
    );
    const c = e.clients.checkout as Record<string, string>;
    await e.t.post(
      '/revoke',
      { token },
      { authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}` },
    );
    const started = Date.now();
    let code = 0;
    while (Date.now() - started < 1000 && code === 0)
      code = (await check(envoyCheck('/tenants/acme/orders/1', { authorization: `Bearer ${token}` }))).status.code;
    assert.equal(code, 16, `still allowed ${Date.now() - started} ms after the revocation`);
  });
});
