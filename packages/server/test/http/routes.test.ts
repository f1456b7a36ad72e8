import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestIdp, type TestIdp } from '@latchkey/testkit';

/**
 * Which credential each route needs, written out by hand: a route added without a line here
 * fails the first test, and the second proves each line by asking every route without
 * credentials.
 */
const EXPECTED: Record<string, string> = {
  'GET /healthz': 'none',
  'GET /readyz': 'none',
  'GET /.well-known/oauth-authorization-server': 'none',
  'GET /.well-known/openid-configuration': 'none',
  'GET /jwks': 'none',
  'GET /sl': 'none',
  'GET /sl/:list': 'none',
  'GET /openapi.json': 'none',
  'GET /ca/bundle': 'none',
  'POST /token': 'client',
  'GET /authorize': 'none',
  'POST /authorize': 'none',
  'POST /authorize/login': 'none',
  'POST /authorize/password': 'none',
  'POST /authorize/second-factor': 'none',
  'POST /authorize/enrol': 'none',
  'POST /authorize/continue': 'none',
  'POST /authorize/consent': 'none',
  'POST /authorize/passkey': 'none',
  'POST /authorize/enrol-passkey': 'none',
  'POST /par': 'client',
  'GET /end_session': 'none',
  'POST /end_session': 'none',
  'GET /userinfo': 'user',
  'POST /userinfo': 'user',
  'POST /introspect': 'client',
  'POST /revoke': 'client',
  'GET /register/:clientId': 'registration',
  'PUT /register/:clientId': 'registration',
  'DELETE /register/:clientId': 'registration',
  'POST /workload/certificate': 'service',
  'GET /feeds/revocations': 'service',
  'GET /feeds/keys': 'service',
  'GET /feeds/stream': 'service',
  'GET /feeds/policy': 'service',
  'POST /audit/events': 'service',
  'GET /.well-known/ssf-configuration': 'none',
  'POST /ssf/stream': 'service',
  'GET /ssf/stream': 'service',
  'PATCH /ssf/stream': 'service',
  'PUT /ssf/stream': 'service',
  'DELETE /ssf/stream': 'service',
  'GET /ssf/status': 'service',
  'POST /ssf/status': 'service',
  'POST /ssf/subjects/add': 'service',
  'POST /ssf/subjects/remove': 'service',
  'POST /ssf/verify': 'service',
  'POST /ssf/poll/:streamId': 'service',
  'GET /console': 'none',
  'GET /console/': 'none',
  'GET /console/assets/:file': 'none',
  'GET /console/sign-in': 'none',
  'POST /console/session': 'none',
  'GET /console/session': 'console',
  'DELETE /console/session': 'console',
  'POST /register': 'admin',
  'GET /metrics': 'admin',
  'GET /admin/clients': 'admin',
  'GET /admin/clients/:clientId': 'admin',
  'PUT /admin/clients/:clientId': 'admin',
  'DELETE /admin/clients/:clientId': 'admin',
  'POST /admin/clients/:clientId/revoke': 'admin',
  'POST /admin/clients/:clientId/unlock': 'admin',
  'POST /admin/subjects/:sub/revoke': 'admin',
  'POST /admin/users': 'admin',
  'GET /admin/users': 'admin',
  'GET /admin/users/:user': 'admin',
  'PATCH /admin/users/:user': 'admin',
  'DELETE /admin/users/:user': 'admin',
  'PUT /admin/users/:user/roles': 'admin',
  'PUT /admin/users/:user/groups': 'admin',
  'POST /admin/users/:user/disable': 'admin',
  'POST /admin/users/:user/enable': 'admin',
  'POST /admin/users/:user/password': 'admin',
  'POST /admin/users/:user/second-factor/reset': 'admin',
  'GET /admin/users/:user/consents': 'admin',
  'DELETE /admin/users/:user/consents/:client': 'admin',
  'GET /admin/federation': 'admin',
  'PUT /admin/federation/issuers/:name': 'admin',
  'DELETE /admin/federation/issuers/:name': 'admin',
  'PUT /admin/federation/rules/:name': 'admin',
  'DELETE /admin/federation/rules/:name': 'admin',
  'POST /admin/federation/test': 'admin',
  'GET /admin/audit': 'admin',
  'GET /admin/audit/verify': 'admin',
  'POST /admin/audit/verify': 'admin',
  'GET /admin/audit/checkpoints': 'admin',
  'POST /admin/audit/checkpoints': 'admin',
  'POST /admin/audit/prune': 'admin',
  'GET /admin/alerts': 'admin',
  'POST /admin/alerts/:id/acknowledge': 'admin',
  'GET /admin/audit/stream': 'admin',
  'GET /admin/stats': 'admin',
  'POST /admin/console/links': 'admin',
  'POST /admin/policy/validate': 'admin',
  'POST /admin/policy': 'admin',
  'GET /admin/policy': 'admin',
  'GET /admin/policy/versions': 'admin',
  'GET /admin/policy/versions/:version': 'admin',
  'GET /admin/policy/diff': 'admin',
  'POST /admin/policy/rollback': 'admin',
  'PUT /admin/policy/entities/:type/:id': 'admin',
  'DELETE /admin/policy/entities/:type/:id': 'admin',
  'POST /admin/policy/entities/:type/:id/parents': 'admin',
  'DELETE /admin/policy/entities/:type/:id/parents/:ptype/:pid': 'admin',
  'GET /admin/ca': 'admin',
  'POST /admin/ca/rotate': 'admin',
  'GET /admin/keys': 'admin',
  'POST /admin/keys/rotate': 'admin',
  'POST /admin/keys/:kid/revoke': 'admin',
};

/** A body that passes each kind of route's content rules, so that only the credential is missing. */
const FORM_BODIES: Record<string, string> = {
  '/token': 'grant_type=client_credentials',
  '/introspect': 'token=x',
  '/revoke': 'token=x',
  '/userinfo': 'x=1',
  '/par': 'response_type=code',
};

describe('every route states its credential, and enforces it', () => {
  let t: TestIdp;
  let table: { method: string; url: string; credential: string | undefined }[];
  before(async () => {
    t = await startTestIdp();
    table = (t.idp.app as unknown as { routeTable: () => typeof table })
      .routeTable()
      .filter((r) => r.method !== 'HEAD');
  });
  after(() => t.close());

  test('the route table is exactly the expected one: no route without a credential, none unlisted', () => {
    const actual = Object.fromEntries(table.map((r) => [`${r.method} ${r.url}`, r.credential]));
    assert.deepEqual(actual, EXPECTED);
  });

  test('asked without credentials, every protected route refuses with 401 before reading the request, and only those', async () => {
    for (const r of table) {
      const path = r.url.replace(/:[a-zA-Z]+/g, 'x1');
      const form = r.method === 'POST' ? FORM_BODIES[r.url] : undefined;
      const res = await t.fetch(`${t.issuer}${path}`, {
        method: r.method,
        ...(form
          ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form }
          : r.method === 'POST' || r.method === 'PUT'
            ? { headers: { 'content-type': 'application/json' }, body: '{}' }
            : {}),
      });
      const where = `${r.method} ${r.url} (${r.credential})`;
      if (r.url === '/feeds/stream' && res.status === 200) await res.body?.cancel();
      const body = res.status === 401 ? ((await res.json()) as { error: string }) : undefined;
      if (res.status !== 401) await res.arrayBuffer().catch(() => undefined);
      if (r.credential === 'none') {
        assert.notEqual(res.status, 401, where);
        continue;
      }
      assert.equal(res.status, 401, where);
      const challenge = res.headers.get('www-authenticate') ?? '';
      if (r.credential === 'client') {
        assert.equal(body?.error, 'invalid_client', where);
        assert.match(challenge, /^Basic /, where);
      } else if (r.credential === 'admin' || r.credential === 'registration' || r.credential === 'user') {
        assert.match(challenge, /^Bearer /, where);
      } else {
        // A service may authenticate as a client (Basic) or with its own access token.
        assert.ok(body?.error === 'invalid_client' || body?.error === 'invalid_token', where);
      }
    }
  });

  test('the admin API answers in its own error shape: distinct codes for validation, not found, conflict, media type', async () => {
    const admin = { authorization: `Bearer ${t.adminToken}` };
    const get = async (path: string, init: RequestInit = {}) => {
      const res = await t.fetch(`${t.issuer}${path}`, { ...init, headers: { ...admin, ...init.headers } });
      return { status: res.status, body: (await res.json()) as { error: string; errors?: unknown[] } };
    };
    assert.deepEqual(
      [(await get('/admin/clients/nobody')).status, (await get('/admin/clients/nobody')).body.error],
      [404, 'not_found'],
    );
    const bad = await get('/admin/alerts?limit=many');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'validation_failed');
    assert.deepEqual(bad.body.errors, [
      { in: 'querystring', path: '/limit', message: 'must match pattern "^\\d{1,4}$"' },
    ]);
    const repeated = await get('/admin/audit?type=a&type=b');
    assert.equal(repeated.body.error, 'validation_failed', 'a repeated parameter is refused');
    const xml = await get('/admin/keys/rotate', {
      method: 'POST',
      headers: { 'content-type': 'application/xml' },
      body: '<now/>',
    });
    assert.deepEqual([xml.status, xml.body.error], [415, 'unsupported_media_type']);
    const unknown = await get('/admin/keys/rotate', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"now":true,"extra":1}',
    });
    assert.deepEqual([unknown.status, unknown.body.error], [400, 'validation_failed']);
    const wrongType = await get('/admin/keys/rotate', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"now":"yes"}',
    });
    assert.deepEqual([wrongType.status, wrongType.body.error], [400, 'validation_failed'], 'no type coercion');
    await get('/admin/policy', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ schema: { s: 'entity User;' }, policies: { p: 'permit(principal, action, resource);' } }),
    });
    const stale = await get('/admin/policy', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        schema: { s: 'entity User;' },
        policies: { p: 'forbid(principal, action, resource);' },
        expected_version: 0,
      }),
    });
    assert.deepEqual([stale.status, stale.body.error], [409, 'conflict']);
    const unknownPath = await get('/admin/nothing-here');
    assert.deepEqual([unknownPath.status, unknownPath.body.error], [404, 'not_found']);
  });
});

test('an app with a route that states no credential does not start', async () => {
  const { default: Fastify } = await import('fastify');
  const { routeTable } = await import('../../src/http/route_rules.ts');
  const app = Fastify();
  routeTable(app);
  app.get('/forgot', { config: {} }, async () => 'x');
  app.get('/stated', { config: { credential: 'none' } }, async () => 'y');
  await assert.rejects(
    async () => app.ready(),
    /routes without a credential \(config.credential\): GET \/forgot, HEAD \/forgot$/,
  );
});
