import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestIdp, type TestIdp, auditEvents } from '@latchkey/testkit';

const AUD = 'https://orders.internal';

describe('dynamic client registration (RFC 7591) and management (RFC 7592)', () => {
  let t: TestIdp;
  before(async () => {
    t = await startTestIdp();
  });
  after(() => t.close());

  const register = (body: unknown, token: string | null = t.adminToken, contentType = 'application/json') =>
    t.fetch(`${t.issuer}/register`, {
      method: 'POST',
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': contentType },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  // RFC 7592 §3: each successful PUT rotates the registration access token. The tests name a
  // client's first token; this follows it to the newest (a rotated-out token is tested on its own).
  const rotated = new Map<string, string>();
  const newest = (token: string): string => (rotated.has(token) ? newest(rotated.get(token)!) : token);
  const config = async (
    clientId: string,
    token: string,
    init: { method?: string; body?: unknown; exact?: boolean } = {},
  ) => {
    const res = await t.fetch(`${t.issuer}/register/${clientId}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${init.exact ? token : newest(token)}`,
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    if (init.method === 'PUT' && res.status === 200) {
      const next = ((await res.clone().json()) as { registration_access_token?: string }).registration_access_token;
      if (next) rotated.set(newest(token), next);
    }
    return res;
  };

  test('201 with client_id, a 256-bit secret shown once, and RFC 7592 credentials', async () => {
    const res = await register({
      client_name: 'orders',
      audiences: [AUD],
      scope: 'orders:read',
      roles: ['reader'],
      access_token_ttl: 120,
      unknown_member: 'ignored',
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as Record<string, any>;
    assert.equal(Buffer.from(body.client_secret, 'base64url').length, 32);
    assert.equal(body.client_secret_expires_at, 0);
    assert.equal(body.registration_client_uri, `${t.issuer}/register/${body.client_id}`);
    assert.equal(typeof body.registration_access_token, 'string');
    assert.equal(body.token_endpoint_auth_method, 'client_secret_basic');
    assert.deepEqual(body.grant_types, ['client_credentials']);
    assert.equal(body.default_audience, AUD);
    assert.equal(body.unknown_member, undefined);
    // Stored hashed: neither the secret nor the registration token appears in the database files.
    for (const f of readdirSync(t.dataDir).filter((n) => n.startsWith('latchkey.db'))) {
      const bytes = readFileSync(join(t.dataDir, f)).toString('latin1');
      assert.ok(!bytes.includes(body.client_secret), `secret found in ${f}`);
      assert.ok(!bytes.includes(body.registration_access_token), `registration token found in ${f}`);
    }

    const read = await config(body.client_id, body.registration_access_token);
    assert.equal(read.status, 200);
    const info = (await read.json()) as Record<string, any>;
    assert.equal(info.client_secret, undefined);
    assert.equal(info.client_name, 'orders');

    const put = await config(body.client_id, body.registration_access_token, {
      method: 'PUT',
      body: { client_id: body.client_id, client_name: 'orders v2', audiences: [AUD] },
    });
    // Rotated on update (issue 11, finding 20): the old token no longer works, the new one does.
    const renewed = ((await put.clone().json()) as { registration_access_token: string }).registration_access_token;
    assert.notEqual(renewed, body.registration_access_token);
    assert.equal((await config(body.client_id, body.registration_access_token, { exact: true })).status, 401);
    assert.equal((await config(body.client_id, renewed, { exact: true })).status, 200);
    assert.equal(put.status, 200);
    const updated = (await put.json()) as Record<string, any>;
    assert.equal(updated.client_name, 'orders v2');
    assert.equal(updated.scope, undefined, 'PUT replaces: omitted members are removed (RFC 7592 §2.2)');

    const del = await config(body.client_id, body.registration_access_token, { method: 'DELETE' });
    assert.equal(del.status, 204);
    const gone = await config(body.client_id, body.registration_access_token);
    assert.equal(gone.status, 401);
    assert.match(gone.headers.get('www-authenticate') ?? '', /Bearer .*error="invalid_token"/);
  });

  test('an administrator may choose a readable client_id; a duplicate is refused', async () => {
    assert.equal((await register({ client_id: 'payments', audiences: [AUD] })).status, 201);
    const dup = await register({ client_id: 'payments', audiences: [AUD] });
    assert.equal(dup.status, 400);
    assert.equal(((await dup.json()) as any).error, 'invalid_client_metadata');
    assert.equal(
      ((await (await register({ client_id: 'Not Valid!' })).json()) as any).error,
      'invalid_client_metadata',
    );
  });

  test('without the admin token (initial access token) → 401 invalid_token', async () => {
    const none = await register({ audiences: [AUD] }, null);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    const wrong = await register({ audiences: [AUD] }, 'x'.repeat(43));
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as any).error, 'invalid_token');
  });

  test('invalid metadata → 400 invalid_client_metadata', async () => {
    const cases: unknown[] = [
      { grant_types: ['password'] },
      { token_endpoint_auth_method: 'none' },
      { token_endpoint_auth_method: 'private_key_jwt' },
      { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: 'abc' }] } },
      {
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b', d: 'secret' }] },
      },
      {
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [{ kty: 'EC' }] },
        jwks_uri: 'https://x.example/jwks',
      },
      { token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'http://x.example/jwks' },
      {
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'HS256',
        jwks_uri: 'https://x.example/jwks',
      },
      { audiences: ['orders'] },
      { audiences: ['https://a.example/#frag'] },
      { audiences: [AUD], default_audience: 'https://other.example' },
      { scope: 'a "b' },
      { access_token_ttl: 999999 },
      { access_token_ttl: 'long' },
      { roles: ['has space'] },
      { client_name: 'x'.repeat(1000) },
      [],
      JSON.stringify('a string'),
      'null',
    ];
    for (const c of cases) {
      const res = await register(c);
      const body = (await res.json()) as any;
      assert.equal(res.status, 400, JSON.stringify(c));
      assert.equal(body.error, 'invalid_client_metadata', JSON.stringify(c));
    }
  });

  test('malformed JSON, wrong content type, oversized body → 4xx invalid_request', async () => {
    const bad = await register('{"audiences": [', t.adminToken);
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as any).error, 'invalid_request');
    const form = await register('audiences=x', t.adminToken, 'application/x-www-form-urlencoded');
    assert.equal(form.status, 415);
    const big = await register({ client_name: 'a', pad: 'x'.repeat(70 * 1024) });
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as any).error, 'invalid_request');
  });

  test('PUT must carry the matching client_id; a wrong registration token cannot touch the client', async () => {
    const res = (await (await register({ audiences: [AUD] })).json()) as Record<string, any>;
    const mismatch = await config(res.client_id, res.registration_access_token, {
      method: 'PUT',
      body: { client_id: 'other', audiences: [AUD] },
    });
    assert.equal(mismatch.status, 400);
    const other = (await (await register({ audiences: [AUD] })).json()) as Record<string, any>;
    assert.equal((await config(res.client_id, other.registration_access_token)).status, 401);
    assert.equal((await config(res.client_id, other.registration_access_token, { method: 'DELETE' })).status, 401);
    assert.equal((await config(res.client_id, res.registration_access_token)).status, 200);
  });

  test('switching to private_key_jwt drops the secret; switching back issues a new one', async () => {
    const res = (await (await register({ audiences: [AUD] })).json()) as Record<string, any>;
    const jwk = {
      kty: 'EC',
      crv: 'P-256',
      x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
      y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
    };
    const toJwt = await config(res.client_id, res.registration_access_token, {
      method: 'PUT',
      body: {
        client_id: res.client_id,
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [jwk] },
        audiences: [AUD],
      },
    });
    assert.equal(toJwt.status, 200);
    const basicNow = await t.post(
      '/token',
      { grant_type: 'client_credentials' },
      { authorization: `Basic ${Buffer.from(`${res.client_id}:${res.client_secret}`).toString('base64')}` },
    );
    assert.equal(basicNow.status, 401);
    const back = (await (
      await config(res.client_id, res.registration_access_token, {
        method: 'PUT',
        body: { client_id: res.client_id, audiences: [AUD] },
      })
    ).json()) as Record<string, any>;
    assert.equal(typeof back.client_secret, 'string');
    assert.notEqual(back.client_secret, res.client_secret);
    const ok = await t.post(
      '/token',
      { grant_type: 'client_credentials' },
      { authorization: `Basic ${Buffer.from(`${res.client_id}:${back.client_secret}`).toString('base64')}` },
    );
    assert.equal(ok.status, 200);
  });

  test('through RFC 7592 a client may narrow what its tokens allow, never widen it; the administrator may (PUT /admin/clients/{id})', async () => {
    const res = (await (
      await register({ audiences: [AUD], scope: 'orders:read', roles: ['reader'], access_token_ttl: 120 })
    ).json()) as Record<string, any>;
    const put = (body: Record<string, unknown>) =>
      config(res.client_id, res.registration_access_token, {
        method: 'PUT',
        body: { client_id: res.client_id, ...body },
      });
    for (const [name, body] of [
      ['audiences', { audiences: [AUD, 'urn:latchkey:svc:billing'] }],
      ['scope', { audiences: [AUD], scope: 'orders:read orders:admin' }],
      ['roles', { audiences: [AUD], roles: ['reader', 'admin'] }],
      ['access_token_ttl', { audiences: [AUD], access_token_ttl: 3600 }],
    ] as const) {
      const r = await put(body);
      assert.equal(r.status, 400, name);
      const e = (await r.json()) as Record<string, string>;
      assert.equal(e.error, 'invalid_client_metadata');
      assert.match(e.error_description!, new RegExp(`^${name}`));
    }
    const narrowed = (await (
      await put({ audiences: [AUD], scope: 'orders:read', access_token_ttl: 60 })
    ).json()) as Record<string, any>;
    assert.deepEqual(
      [narrowed.audiences, narrowed.scope, narrowed.roles, narrowed.access_token_ttl],
      [[AUD], 'orders:read', ['reader'], 60],
      'omitted roles are kept: only an administrator changes them',
    );
    const omitted = (await (await put({ audiences: [AUD] })).json()) as Record<string, any>;
    assert.equal(
      omitted.access_token_ttl,
      60,
      'an omitted lifetime keeps the current one instead of falling back to a longer default',
    );
    const admin = await t.fetch(`${t.issuer}/admin/clients/${res.client_id}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ audiences: [AUD, 'urn:latchkey:svc:billing'], roles: ['admin'] }),
    });
    assert.equal(admin.status, 200);
    assert.deepEqual(((await admin.json()) as Record<string, any>).audiences, [AUD, 'urn:latchkey:svc:billing']);
    const tok = await t.post(
      '/token',
      { grant_type: 'client_credentials', resource: 'urn:latchkey:svc:billing' },
      { authorization: `Basic ${Buffer.from(`${res.client_id}:${res.client_secret}`).toString('base64')}` },
    );
    assert.equal(tok.status, 200);
    const noAdmin = await t.fetch(`${t.issuer}/admin/clients/${res.client_id}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${res.registration_access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ audiences: [AUD] }),
    });
    assert.equal(noAdmin.status, 401);
    const events = await auditEvents(t.idp.storage, { type: 'client.updated', limit: 100 });
    assert.equal(events.at(-1)!.actor, 'admin');
  });

  test('narrowing never removes a restriction: policy_namespaces and roles survive omission, [] and widening (issue 11, findings 1 and 7)', async () => {
    const res = (await (
      await register({ audiences: [AUD], policy_namespaces: ['Orders'], roles: ['quarantined'] })
    ).json()) as Record<string, any>;
    const put = (body: Record<string, unknown>) =>
      config(res.client_id, res.registration_access_token, {
        method: 'PUT',
        body: { client_id: res.client_id, audiences: [AUD], ...body },
      });
    const stored = async () => (await t.idp.storage.getClient(res.client_id))!.metadata;

    const omitted = await put({});
    assert.equal(omitted.status, 200);
    assert.deepEqual(
      (await stored()).policy_namespaces,
      ['Orders'],
      'omitting policy_namespaces must not lift the restriction',
    );
    assert.deepEqual((await stored()).roles, ['quarantined'], 'omitting roles must not escape role-keyed forbids');
    for (const [body, member] of [
      [{ policy_namespaces: [] }, 'policy_namespaces'],
      [{ policy_namespaces: ['Orders', 'Billing'] }, 'policy_namespaces'],
      [{ roles: [] }, 'roles'],
      [{ roles: ['reader'] }, 'roles'],
    ] as const) {
      const r = await put(body);
      assert.equal(r.status, 400, JSON.stringify(body));
      const e = (await r.json()) as Record<string, string>;
      assert.equal(e.error, 'invalid_client_metadata');
      assert.match(e.error_description!, new RegExp(`^${member}`));
    }
    assert.deepEqual([(await stored()).policy_namespaces, (await stored()).roles], [['Orders'], ['quarantined']]);
    // Same roles sent back (what a client echoing its GET does) are accepted.
    assert.equal((await put({ roles: ['quarantined'], policy_namespaces: ['Orders'] })).status, 200);

    // A client that sees every namespace may restrict itself, and cannot undo it.
    const all = (await (await register({ audiences: [AUD] })).json()) as Record<string, any>;
    const putAll = (body: Record<string, unknown>) =>
      config(all.client_id, all.registration_access_token, {
        method: 'PUT',
        body: { client_id: all.client_id, audiences: [AUD], ...body },
      });
    assert.equal((await putAll({ policy_namespaces: ['Billing'] })).status, 200);
    assert.deepEqual((await t.idp.storage.getClient(all.client_id))!.metadata.policy_namespaces, ['Billing']);
    assert.equal((await putAll({})).status, 200);
    assert.deepEqual((await t.idp.storage.getClient(all.client_id))!.metadata.policy_namespaces, ['Billing']);
  });

  test('admin API lists, shows and deletes clients behind the admin bearer', async () => {
    const created = (await (await register({ client_id: 'listed', audiences: [AUD] })).json()) as Record<string, any>;
    const list = await t.fetch(`${t.issuer}/admin/clients`, { headers: { authorization: `Bearer ${t.adminToken}` } });
    const ids = ((await list.json()) as { clients: { client_id: string }[] }).clients.map((c) => c.client_id);
    assert.ok(ids.includes('listed'));
    assert.equal((await t.fetch(`${t.issuer}/admin/clients`)).status, 401);
    assert.equal(
      (
        await t.fetch(`${t.issuer}/admin/clients/listed`, {
          headers: { authorization: `Bearer ${created.registration_access_token}` },
        })
      ).status,
      401,
    );
    assert.equal(
      (await t.fetch(`${t.issuer}/admin/clients/nope`, { headers: { authorization: `Bearer ${t.adminToken}` } }))
        .status,
      404,
    );
  });
});
