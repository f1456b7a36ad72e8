import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { createVerifier, type Verifier } from '@latchkey/sdk/verify';
import { requireToken as fastifyAuth } from '@latchkey/sdk/fastify';
import { requireToken as expressAuth } from '@latchkey/sdk/express';
import { authenticate } from '@latchkey/sdk/node';
import { startTestIdp, type TestIdp, basicAuth } from '@latchkey/testkit';

const AUD = 'https://orders.internal';
const basic = basicAuth;

describe('middleware: Fastify, Express and node:http answer RFC 6750', () => {
  let t: TestIdp;
  let v: Verifier;
  let good: string;
  let narrow: string;
  const servers: { name: string; url: string; close: () => unknown }[] = [];
  before(async () => {
    t = await startTestIdp();
    const svc = await t.register({ audiences: ['https://x.internal'] });
    v = await createVerifier({
      issuer: t.issuer,
      audience: AUD,
      fetch: t.fetch,
      credentials: { clientId: svc.client_id, clientSecret: svc.client_secret },
    });
    const a = await t.register({ audiences: [AUD], scope: 'orders:read orders:write' });
    good = (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(a as never) })).body
      .access_token;
    const b = await t.register({ audiences: [AUD], scope: 'orders:write' });
    narrow = (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(b as never) })).body
      .access_token;

    const f = Fastify();
    f.get('/orders', { onRequest: fastifyAuth({ verifier: v, scope: 'orders:read' }) }, async (req) => ({
      caller: (req as unknown as { latchkey: { client_id: string } }).latchkey.client_id,
    }));
    await f.listen({ port: 0, host: '127.0.0.1' });
    servers.push({
      name: 'fastify',
      url: `http://127.0.0.1:${(f.server.address() as AddressInfo).port}/orders`,
      close: () => f.close(),
    });

    const e = express();
    e.get('/orders', expressAuth({ verifier: v, scope: 'orders:read' }), (req, res) => {
      res.json({ caller: (req as unknown as { latchkey: { client_id: string } }).latchkey.client_id });
    });
    const es: Server = await new Promise((r) => {
      const s = e.listen(0, '127.0.0.1', () => r(s));
    });
    servers.push({
      name: 'express',
      url: `http://127.0.0.1:${(es.address() as AddressInfo).port}/orders`,
      close: () => es.close(),
    });

    const n = createServer(async (req, res) => {
      const claims = await authenticate(req, res, { verifier: v, scope: 'orders:read' });
      if (!claims) return;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ caller: claims.client_id }));
    });
    await new Promise<void>((r) => n.listen(0, '127.0.0.1', r));
    servers.push({
      name: 'node',
      url: `http://127.0.0.1:${(n.address() as AddressInfo).port}/orders`,
      close: () => n.close(),
    });
    (globalThis as { callerId?: string }).callerId = a.client_id;
  });
  after(async () => {
    for (const s of servers) await s.close();
    v.close();
    await t.close();
  });

  test('happy path in each framework, scheme case-insensitive', async () => {
    for (const s of servers) {
      for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
        const res = await fetch(s.url, { headers: { authorization: `${scheme} ${good}` } });
        assert.equal(res.status, 200, `${s.name} ${scheme}`);
        assert.deepEqual(await res.json(), { caller: (globalThis as { callerId?: string }).callerId });
      }
    }
  });

  test('401 invalid_token with WWW-Authenticate and no token echoed; 401 without a token; 403 insufficient_scope', async () => {
    for (const s of servers) {
      const bad = await fetch(s.url, { headers: { authorization: `Bearer ${good.slice(0, -3)}xyz` } });
      assert.equal(bad.status, 401, s.name);
      assert.match(bad.headers.get('www-authenticate') ?? '', /^Bearer realm="latchkey", error="invalid_token"/);
      const text = await bad.text();
      assert.ok(!text.includes(good.slice(0, 30)), `${s.name} echoed the token`);
      assert.equal(JSON.parse(text).error, 'invalid_token');

      const none = await fetch(s.url);
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="latchkey"');

      const scope = await fetch(s.url, { headers: { authorization: `Bearer ${narrow}` } });
      assert.equal(scope.status, 403, s.name);
      assert.equal(
        scope.headers.get('www-authenticate'),
        'Bearer realm="latchkey", error="insufficient_scope", scope="orders:read"',
      );
      assert.equal((await scope.json()).error, 'insufficient_scope');

      const basicAuth = await fetch(s.url, { headers: { authorization: 'Basic abc' } });
      assert.equal(basicAuth.status, 401);
    }
  });
});
