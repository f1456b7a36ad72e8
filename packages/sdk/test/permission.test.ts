import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { createAuditQueue } from '@latchkey/sdk/audit';
import { createAuthorizer, type Authorizer } from '@latchkey/sdk/authorize';
import { requirePermission as expressPermission, requireToken as expressAuth } from '@latchkey/sdk/express';
import { requirePermission as fastifyPermission, requireToken as fastifyAuth } from '@latchkey/sdk/fastify';
import { authenticate, requirePermission as nodePermission } from '@latchkey/sdk/node';
import { createVerifier, type Verifier } from '@latchkey/sdk/verify';
import { basicAuth, startTestIdp, type TestIdp, auditEvents } from '@latchkey/testkit';

const AUD = 'https://orders.internal';
const SCHEMA =
  'entity Role in [Role];\nentity Service in [Role];\nnamespace Orders { entity Order { owner: Service }; action read appliesTo { principal: Service, resource: Order }; }\n';
const POLICIES = {
  'owners-read': 'permit(principal, action == Orders::Action::"read", resource) when { resource.owner == principal };',
};
// The service's own data: who owns which order.
const OWNERS: Record<string, string> = { '1': 'checkout', '2': 'someone-else' };

describe('requirePermission in Fastify, Express and node:http', () => {
  let t: TestIdp;
  let verifier: Verifier;
  let authorizer: Authorizer;
  let token: string;
  let queue: ReturnType<typeof createAuditQueue>;
  const servers: { name: string; url: string; close: () => unknown }[] = [];
  const resource = (id: string) => ({
    type: 'Orders::Order',
    id,
    attrs: { owner: { __entity: { type: 'Service', id: OWNERS[id] ?? 'nobody' } } },
  });

  before(async () => {
    t = await startTestIdp();
    const svc = await t.register({ client_id: 'orders', audiences: ['https://x.internal'] });
    const caller = await t.register({ client_id: 'checkout', audiences: [AUD] });
    const res = await t.fetch(`${t.issuer}/admin/policy`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ schema: { 's.cedarschema': SCHEMA }, policies: POLICIES }),
    });
    assert.equal(res.status, 201);
    const credentials = { clientId: svc.client_id, clientSecret: svc.client_secret };
    queue = createAuditQueue({ issuer: t.issuer, credentials, fetch: t.fetch, flushInterval: 3600 });
    verifier = await createVerifier({ issuer: t.issuer, audience: AUD, fetch: t.fetch, credentials });
    authorizer = await createAuthorizer({ issuer: t.issuer, credentials, fetch: t.fetch, audit: queue });
    token = (
      await t.post(
        '/token',
        { grant_type: 'client_credentials' },
        { authorization: basicAuth(caller.client_id, caller.client_secret) },
      )
    ).body.access_token;
    const action = 'Orders::Action::"read"';

    const f = Fastify();
    f.get<{ Params: { id: string } }>(
      '/orders/:id',
      {
        onRequest: fastifyAuth({ verifier }),
        preHandler: fastifyPermission<any>({ authorizer, action, resource: (req) => resource(req.params.id) }),
      },
      async (req) => ({
        id: req.params.id,
        by: (req as unknown as { latchkeyDecision: { reasons: string[] } }).latchkeyDecision.reasons,
      }),
    );
    await f.listen({ port: 0, host: '127.0.0.1' });
    servers.push({
      name: 'fastify',
      url: `http://127.0.0.1:${(f.server.address() as AddressInfo).port}`,
      close: () => f.close(),
    });

    const e = express();
    e.get(
      '/orders/:id',
      expressAuth({ verifier }),
      expressPermission<any>({ authorizer, action, resource: (req) => resource(req.params.id) }),
      (req, res) => {
        res.json({
          id: req.params.id,
          by: (req as unknown as { latchkeyDecision: { reasons: string[] } }).latchkeyDecision.reasons,
        });
      },
    );
    const es: Server = await new Promise((r) => {
      const s = e.listen(0, '127.0.0.1', () => r(s));
    });
    servers.push({
      name: 'express',
      url: `http://127.0.0.1:${(es.address() as AddressInfo).port}`,
      close: () => es.close(),
    });

    const n = createServer(async (req, res) => {
      const claims = await authenticate(req, res, { verifier });
      if (!claims) return;
      const id = (req.url ?? '').split('/').pop()!;
      const decision = await nodePermission(req, res, claims, { authorizer, action, resource: () => resource(id) });
      if (!decision) return;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, by: decision.reasons }));
    });
    await new Promise<void>((r) => n.listen(0, '127.0.0.1', r));
    servers.push({
      name: 'node',
      url: `http://127.0.0.1:${(n.address() as AddressInfo).port}`,
      close: () => n.close(),
    });
  });
  after(async () => {
    for (const s of servers) await s.close();
    verifier.close();
    authorizer.close();
    await queue.close().catch(() => undefined);
    await t.close();
  });

  test('the owner is allowed, another service is 403 access_denied, no token is 401; every decision is audited', async () => {
    for (const s of servers) {
      const ok = await fetch(`${s.url}/orders/1`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(ok.status, 200, s.name);
      assert.deepEqual(await ok.json(), { id: '1', by: ['owners-read'] });
      const denied = await fetch(`${s.url}/orders/2`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(denied.status, 403, s.name);
      assert.deepEqual(await denied.json(), {
        error: 'access_denied',
        error_description: 'the request is not permitted',
      });
      assert.equal((await fetch(`${s.url}/orders/1`)).status, 401, s.name);
    }
    await queue.flush();
    const events = await auditEvents(t.idp.storage, { type: 'authz.decision', limit: 100 });
    assert.deepEqual(
      events.map((e) => e.outcome),
      ['success', 'failure', 'success', 'failure', 'success', 'failure'],
    );
    assert.ok(events.every((e) => e.actor === 'Service::"checkout"' && e.client_id === 'orders'));
  });
});
