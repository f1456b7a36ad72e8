import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { type Estate, startEstate } from './sidecar_fixture.ts';

/**
 * A raw HTTP/1.1 request (no client-side normalisation of the path), streaming `body` chunks, on a
 * connection of its own (no agent: one test's half-sent upload never holds a socket another reuses),
 * closed once the answer is in, even if the body is still being sent.
 */
function raw(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: AsyncIterable<Buffer> | Buffer,
): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        if (!req.writableFinished) req.destroy();
      });
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else
      (async () => {
        for await (const chunk of body) if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        req.end();
      })().catch(reject);
  });
}

describe('sidecar reverse proxy in front of a Python service', () => {
  let e: Estate;
  let proxy: string;
  let checkout: string;
  const get = (path: string, headers: Record<string, string> = {}) => raw(proxy, 'GET', path, headers);
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  before(async () => {
    e = await startEstate();
    proxy = e.sidecar.proxyUrl as string;
    checkout = await e.token('checkout');
  });
  after(async () => {
    await e?.close();
  });

  test('no token: 401 with an RFC 6750 challenge, and the upstream is not asked', async () => {
    const r = await get('/tenants/acme/orders/1');
    assert.equal(r.status, 401);
    assert.match(String(r.headers['www-authenticate']), /^Bearer realm="https:\/\/orders.internal"/);
    assert.equal(r.body.error, 'invalid_token');
    assert.equal(r.body.headers, undefined, 'the answer is the sidecar’s, not the upstream’s');
    const bad = await get('/tenants/acme/orders/1', bearer('not.a.jwt'));
    assert.equal(bad.status, 401);
    assert.match(String(bad.headers['www-authenticate']), /error="invalid_token"/);
  });

  test('allowed: the upstream gets the identity headers, never forged ones, and not the token', async () => {
    const r = await get('/tenants/acme/orders/1?x=1', {
      ...bearer(checkout),
      'x-latchkey-sub': 'admin',
      'X-Latchkey-Roles': 'admin',
      'x-latchkey-anything': 'forged',
    });
    assert.equal(r.status, 200);
    const seen = r.body.headers as Record<string, string>;
    assert.equal(r.body.path, '/tenants/acme/orders/1?x=1');
    assert.equal(seen['x-latchkey-sub'], 'checkout');
    assert.equal(seen['x-latchkey-client-id'], 'checkout');
    assert.equal(seen['x-latchkey-roles'], 'reader');
    assert.equal(seen['x-latchkey-anything'], undefined);
    assert.equal(seen.authorization, undefined, 'pass_authorization is off by default');
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    const identity = Object.keys(seen).filter((h) => h.startsWith('x-latchkey-'));
    assert.deepEqual(
      identity.sort(),
      ['x-latchkey-client-id', 'x-latchkey-roles', 'x-latchkey-scope', 'x-latchkey-sub']
        .filter((h) => h in seen)
        .sort(),
    );
  });

  test('Cedar decides: tenant isolation, owner-only cancel, another tenant’s service', async () => {
    assert.equal((await get('/tenants/other/orders/1', bearer(checkout))).status, 403);
    const evil = await e.token('evil');
    const denied = await get('/tenants/acme/orders/1', bearer(evil));
    assert.equal(denied.status, 403);
    assert.deepEqual(denied.body, { error: 'access_denied', error_description: 'the policy denies this request' });
    assert.equal((await get('/tenants/evil/orders/1', bearer(evil))).status, 200);
    assert.equal((await raw(proxy, 'DELETE', '/tenants/acme/orders/7?owner=checkout', bearer(checkout))).status, 200);
    assert.equal((await raw(proxy, 'DELETE', '/tenants/acme/orders/7?owner=evil', bearer(checkout))).status, 403);
    assert.equal(
      (await raw(proxy, 'DELETE', '/tenants/acme/orders/7', bearer(checkout))).status,
      403,
      'no owner: no permit',
    );
  });

  test('unmatched routes are denied; public routes pass without identity (forged identity still stripped)', async () => {
    const r = await get('/admin/users', bearer(checkout));
    assert.equal(r.status, 403);
    assert.equal(r.body.error_description, 'no route allows this request');
    assert.equal(
      (await raw(proxy, 'POST', '/tenants/acme/orders/1', bearer(checkout))).status,
      403,
      'method not in the table',
    );
    const pub = await get('/health', { 'x-latchkey-sub': 'admin' });
    assert.equal(pub.status, 200);
    assert.equal(pub.body.headers['x-latchkey-sub'], undefined);
  });

  test('paths the upstream could read differently are refused before any decision', async () => {
    for (const path of [
      '/tenants/acme/orders/%2e%2e/x',
      '/tenants/acme/orders/a%2Fb',
      '/tenants/acme//orders/1',
      '/tenants/acme/orders/../1',
      '/tenants/acme/orders/%zz',
    ])
      assert.equal((await get(path, bearer(checkout))).status, 400, path);
  });

  test('a large upload streams through unbuffered; bodies over the limit get 413', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const upstream = e.upstream;
    async function* body() {
      yield chunk;
      // The rest is sent only once the upstream has the first megabyte: a buffering proxy would wait forever.
      await upstream.line('first-chunk /upload/big');
      for (let i = 0; i < 19; i++) yield chunk;
    }
    const r = await raw(
      proxy,
      'POST',
      '/upload/big',
      { ...bearer(checkout), 'content-type': 'application/octet-stream' },
      body(),
    );
    assert.equal(r.status, 200);
    assert.equal(r.body.body_bytes, 20 * 1024 * 1024);
    async function* announced() {
      yield Buffer.alloc(1024);
      await new Promise(() => undefined); // the answer comes before the body
    }
    const big = await raw(
      proxy,
      'POST',
      '/upload/huge',
      { ...bearer(checkout), 'content-length': String(65 * 1024 * 1024) },
      announced(),
    );
    assert.equal(big.status, 413);
    async function* endless() {
      for (let i = 0; i < 70; i++) yield chunk;
    }
    const streamed = await raw(
      proxy,
      'POST',
      '/upload/endless',
      { ...bearer(checkout), 'content-type': 'application/octet-stream' },
      endless(),
    ).catch((err: NodeJS.ErrnoException) => ({ status: err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 413 : 0 }));
    assert.equal(streamed.status, 413);
  });

  test('WebSocket upgrades pass after authorization, with the identity; without a token they are refused', async () => {
    const wsUrl = `${proxy.replace('http', 'ws')}/ws`;
    const ws = new WebSocket(wsUrl, { headers: bearer(checkout) });
    const reply = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('hello'));
      ws.once('message', (m) => resolve(m.toString()));
      ws.once('error', reject);
    });
    ws.close();
    assert.equal(reply, 'sub=checkout:hello');
    const refused = await new Promise<number>((resolve, reject) => {
      const anon = new WebSocket(wsUrl);
      anon.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      anon.once('open', () => reject(new Error('opened without a token')));
      anon.once('error', () => undefined);
    });
    assert.equal(refused, 401);
  });

  test('a token revoked at the IdP is refused within a second in every HTTP mode: proxy, forward auth, HTTP ext_authz, AuthZEN', async () => {
    const token = await e.token('checkout');
    const api = e.sidecar.url as string;
    const modes: Record<string, () => Promise<number>> = {
      proxy: async () => (await get('/tenants/acme/orders/2', bearer(token))).status,
      forward_auth: async () =>
        (
          await fetch(`${api}/auth`, {
            headers: { ...bearer(token), 'x-original-method': 'GET', 'x-original-uri': '/tenants/acme/orders/2' },
          })
        ).status,
      ext_authz_http: async () =>
        (await fetch(`${api}/ext_authz/tenants/acme/orders/2`, { headers: bearer(token) })).status,
      authzen: async () =>
        (
          await fetch(`${api}/access/v1/evaluation`, {
            method: 'POST',
            headers: { ...bearer(token), 'content-type': 'application/json' },
            body: JSON.stringify({
              subject: { type: 'Service', id: 'checkout' },
              action: { name: 'read' },
              resource: { type: 'Orders::Order', id: '2', properties: { tenant: 'acme' } },
            }),
          })
        ).status,
    };
    for (const [mode, call] of Object.entries(modes)) assert.equal(await call(), 200, mode);
    const c = e.clients.checkout as Record<string, string>;
    const revoked = await e.t.post(
      '/revoke',
      { token },
      {
        authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`,
      },
    );
    assert.equal(revoked.status, 200);
    const started = Date.now();
    let status = 200;
    while (Date.now() - started < 1000 && status === 200) status = await (modes.proxy as () => Promise<number>)();
    assert.equal(status, 401, `still accepted ${Date.now() - started} ms after the revocation`);
    for (const [mode, call] of Object.entries(modes)) assert.equal(await call(), 401, mode);
  });

  test('health, readiness and metrics on the sidecar’s own listener', async () => {
    const api = e.sidecar.url as string;
    assert.equal((await fetch(`${api}/healthz`)).status, 200);
    const ready = await fetch(`${api}/readyz`);
    assert.equal(ready.status, 200);
    const body = (await ready.json()) as { status: string; policy: { version: number } };
    assert.equal(body.status, 'ready');
    assert.ok(body.policy.version >= 1);
    const metrics = await (await fetch(`${api}/metrics`)).text();
    assert.match(metrics, /latchkey_sidecar_requests_total\{mode="proxy",route="routes\/1",outcome="allowed"\} [1-9]/);
    assert.match(metrics, /latchkey_sidecar_requests_total\{mode="proxy",route="unmatched",outcome="no_route"\} [1-9]/);
    assert.match(metrics, /latchkey_sidecar_ready 1/);
    assert.match(metrics, /latchkey_sidecar_feed_pushed 1/);
  });

  test('every decision reaches the IdP’s audit trail, reported by the protected service', async () => {
    await e.sidecar.audit.flush();
    const r = await e.t.fetch(`${e.t.issuer}/admin/audit?type=authz.decision&limit=500`, {
      headers: { authorization: `Bearer ${e.t.adminToken}` },
    });
    const events = (
      (await r.json()) as {
        events: { outcome: string; actor: string; reason?: string; detail?: Record<string, unknown> }[];
      }
    ).events;
    const allowed = events.find((ev) => ev.outcome === 'success' && ev.actor === 'Service::"checkout"');
    assert.ok(allowed, 'an allowed read is audited');
    assert.equal(allowed.detail?.service, 'orders');
    assert.equal(allowed.detail?.action, 'Orders::Action::"read"');
    assert.ok(
      events.some((ev) => ev.outcome === 'failure' && ev.actor === 'Service::"evil"'),
      'a denial is audited',
    );
    assert.ok(
      events.some((ev) => ev.reason === 'no matching route'),
      'a request no route allows is audited',
    );
  });

  test('with the IdP stopped, decisions continue from cache (fail-static)', async () => {
    const token = await e.token('checkout');
    await e.t.idp.close();
    assert.equal((await get('/tenants/acme/orders/3', bearer(token))).status, 200);
    assert.equal((await get('/tenants/other/orders/3', bearer(token))).status, 403);
    assert.equal((await get('/tenants/acme/orders/3')).status, 401);
  });
});
