import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { startTestIdp, type TestIdp, basicAuth, tlsFetch, auditEvents } from '@latchkey/testkit';

const AUD = 'https://orders.internal';
const basic = basicAuth;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

describe('token endpoint: every error is RFC 6749 §5.2 shaped', () => {
  let t: TestIdp;
  let c: { client_id: string; client_secret: string };
  let auth: string;
  before(async () => {
    t = await startTestIdp();
    c = (await t.register({ audiences: [AUD], scope: 'a b' })) as typeof c;
    auth = basic(c.client_id, c.client_secret);
  });
  after(() => t.close());

  const expectError = (res: { status: number; body: any; headers: Headers }, status: number, error: string) => {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.error, error);
    assert.equal(typeof res.body.error_description, 'string');
    assert.deepEqual(Object.keys(res.body).sort(), ['error', 'error_description']);
    assert.equal(res.headers.get('content-type')?.startsWith('application/json'), true);
    assert.equal(res.headers.get('cache-control'), 'no-store');
  };

  /** One request, the error it must get, and what the audit trail must say about it. */
  interface Row {
    name: string;
    body: Record<string, string | string[]> | string;
    /** Request headers; `auth` is the registered client's Basic credentials. */
    headers?: (auth: string) => Record<string, string>;
    status: number;
    error: string;
    /**
     * The audit events it writes, as [type, reason]. A refusal before the client is known writes
     * nothing; a second failure anyone can cause without credentials, from the same source within
     * the aggregation window, is counted into the first one's event rather than written again.
     */
    audit: [string, string][];
    check?: (res: { headers: Headers; body: any }) => void;
  }
  const withAuth = (a: string) => ({ authorization: a });
  const ROWS: Row[] = [
    { name: 'missing grant_type', body: {}, headers: withAuth, status: 400, error: 'invalid_request', audit: [] },
    {
      name: 'unknown grant_type',
      body: { grant_type: 'password' },
      headers: withAuth,
      status: 400,
      error: 'unsupported_grant_type',
      audit: [],
    },
    {
      name: 'repeated grant_type (RFC 6749 §3.2)',
      body: 'grant_type=client_credentials&grant_type=client_credentials',
      headers: withAuth,
      status: 400,
      error: 'invalid_request',
      audit: [],
    },
    {
      name: 'repeated scope',
      body: 'grant_type=client_credentials&scope=a&scope=b',
      headers: withAuth,
      status: 400,
      error: 'invalid_request',
      audit: [],
    },
    {
      name: 'two client authentication methods in one request',
      body: { grant_type: 'client_credentials', client_id: 'CLIENT', client_secret: 'SECRET' },
      headers: withAuth,
      status: 400,
      error: 'invalid_request',
      audit: [['client.auth_failed', 'multiple_methods']],
    },
    {
      name: 'wrong secret: WWW-Authenticate Basic, the secret not echoed',
      body: { grant_type: 'client_credentials' },
      headers: () => ({ authorization: basic('CLIENT', 'a-wrong-secret-that-must-not-be-echoed') }),
      status: 401,
      error: 'invalid_client',
      audit: [['client.auth_failed', 'bad_secret']],
      check: (res) => {
        assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /);
        assert.ok(!JSON.stringify(res.body).includes('a-wrong-secret'));
      },
    },
    {
      name: 'unknown client',
      body: { grant_type: 'client_credentials' },
      headers: () => ({ authorization: basic('nobody', 'x') }),
      status: 401,
      error: 'invalid_client',
      audit: [['client.auth_failed', 'unknown_client']],
    },
    {
      name: 'malformed Basic',
      body: { grant_type: 'client_credentials' },
      headers: () => ({ authorization: 'Basic !!!' }),
      status: 401,
      error: 'invalid_client',
      audit: [['client.auth_failed', 'malformed_credentials']],
    },
    {
      name: 'Basic without a colon (the same failure again from this source: counted, not written)',
      body: { grant_type: 'client_credentials' },
      headers: () => ({ authorization: `Basic ${Buffer.from('nocolon').toString('base64')}` }),
      status: 401,
      error: 'invalid_client',
      audit: [],
    },
    {
      name: 'no credentials',
      body: { grant_type: 'client_credentials' },
      status: 401,
      error: 'invalid_client',
      audit: [['client.auth_failed', 'no_credentials']],
    },
    {
      name: 'a method other than the registered one',
      body: { grant_type: 'client_credentials', client_id: 'CLIENT', client_secret: 'SECRET' },
      status: 401,
      error: 'invalid_client',
      audit: [['client.auth_failed', 'wrong_method']],
    },
    {
      name: 'client_id in the body that differs from Basic',
      body: { grant_type: 'client_credentials', client_id: 'someone-else' },
      headers: withAuth,
      status: 401,
      error: 'invalid_client',
      audit: [['client.auth_failed', 'client_id_mismatch']],
    },
    {
      name: 'scope outside the registration',
      body: { grant_type: 'client_credentials', scope: 'a admin' },
      headers: withAuth,
      status: 400,
      error: 'invalid_scope',
      audit: [['token.request_failed', 'invalid_scope']],
    },
    {
      name: 'malformed scope',
      body: { grant_type: 'client_credentials', scope: 'a "b' },
      headers: withAuth,
      status: 400,
      error: 'invalid_scope',
      audit: [['token.request_failed', 'invalid_scope']],
    },
    {
      name: 'resource outside the registration (RFC 8707)',
      body: { grant_type: 'client_credentials', resource: 'https://billing.internal' },
      headers: withAuth,
      status: 400,
      error: 'invalid_target',
      audit: [['token.request_failed', 'invalid_target']],
    },
    {
      name: 'resource not an absolute URI',
      body: { grant_type: 'client_credentials', resource: 'orders' },
      headers: withAuth,
      status: 400,
      error: 'invalid_target',
      audit: [['token.request_failed', 'invalid_target']],
    },
    {
      name: 'resource with a fragment',
      body: { grant_type: 'client_credentials', resource: `${AUD}#frag` },
      headers: withAuth,
      status: 400,
      error: 'invalid_target',
      audit: [['token.request_failed', 'invalid_target']],
    },
    {
      name: 'body over the cap',
      body: `grant_type=client_credentials&scope=${'a'.repeat(17 * 1024)}`,
      headers: withAuth,
      status: 413,
      error: 'invalid_request',
      audit: [],
    },
  ];

  for (const row of ROWS) {
    test(`${row.name} → ${row.status} ${row.error}, audited as ${JSON.stringify(row.audit)}`, async () => {
      const fill = (v: string) => v.replace('CLIENT', c.client_id).replace('SECRET', c.client_secret);
      const body =
        typeof row.body === 'string'
          ? row.body
          : Object.fromEntries(Object.entries(row.body).map(([k, v]) => [k, Array.isArray(v) ? v.map(fill) : fill(v)]));
      const headers: Record<string, string> = { ...row.headers?.(auth) };
      // The registered client's id and secret stand in for CLIENT and SECRET in a Basic header too.
      if (headers.authorization?.startsWith('Basic ')) {
        const decoded = Buffer.from(headers.authorization.slice(6), 'base64').toString();
        if (decoded.startsWith('CLIENT:')) headers.authorization = basic(c.client_id, decoded.slice(7));
      }
      await t.idp.audit.flush();
      const head = (await t.idp.storage.auditHead())?.seq ?? 0;
      const res = await t.post('/token', body, headers);
      expectError(res, row.status, row.error);
      row.check?.(res);
      await t.idp.audit.flush();
      // What this request wrote; an alert the detectors raise meanwhile (from earlier rows'
      // events, asynchronously) is not the request's.
      const written = (await t.idp.storage.queryAuditEvents({ after: head, limit: 100 }))
        .filter((e) => e.type !== 'alert.raised')
        .map((e) => [e.type, e.reason]);
      assert.deepEqual(written, row.audit);
    });
  }

  test('a JSON or any other non-form body → 415 invalid_request, before it is parsed; no body → 400', async () => {
    const json = await t.fetch(`${t.issuer}/token`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: '{"grant_type":"client_credentials"}',
    });
    expectError({ status: json.status, body: await json.json(), headers: json.headers }, 415, 'invalid_request');
    const xml = await t.fetch(`${t.issuer}/token`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/xml' },
      body: '<x/>',
    });
    expectError({ status: xml.status, body: await xml.json(), headers: xml.headers }, 415, 'invalid_request');
    const none = await t.fetch(`${t.issuer}/token`, { method: 'POST', headers: { authorization: auth } });
    expectError({ status: none.status, body: await none.json(), headers: none.headers }, 400, 'invalid_request');
  });
  test('malformed form bodies and garbage never give a 500', async () => {
    for (const body of [
      '%%%%',
      '&&&=&=',
      'grant_type=%E0%A4%A',
      '\u0000\u0001\u0002',
      'grant_type=client_credentials&resource=%00',
    ]) {
      const res = await t.post('/token', body, { authorization: auth });
      assert.ok(res.status >= 400 && res.status < 500, `${JSON.stringify(body)} → ${res.status}`);
      assert.equal(typeof res.body.error, 'string');
    }
  });
  test('no resource and no default audience → invalid_target', async () => {
    const bare = await t.register({});
    expectError(
      await t.post(
        '/token',
        { grant_type: 'client_credentials' },
        { authorization: basic(bare.client_id, bare.client_secret) },
      ),
      400,
      'invalid_target',
    );
  });
  test('GET /token is not an endpoint', async () => {
    const res = await t.fetch(`${t.issuer}/token`);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
  });
});

describe('private_key_jwt (RFC 7523 §3) rules', () => {
  let t: TestIdp;
  let clientId: string;
  let key: CryptoKey;
  before(async () => {
    t = await startTestIdp();
    const kp = await jose.generateKeyPair('ES256');
    key = kp.privateKey;
    const reg = await t.register({
      audiences: [AUD],
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks: { keys: [{ ...(await jose.exportJWK(kp.publicKey)), kid: 'k1' }] },
    });
    clientId = reg.client_id;
  });
  after(() => t.close());

  const assertion = (
    claims: Record<string, unknown> = {},
    header: Record<string, unknown> = {},
    signWith: CryptoKey | Uint8Array = key,
    alg = 'ES256',
  ) => {
    const now = Math.floor(Date.now() / 1000);
    return new jose.SignJWT({ jti: randomBytes(16).toString('base64url'), ...claims })
      .setProtectedHeader({ alg, kid: 'k1', ...header })
      .setIssuer((claims.iss as string) ?? clientId)
      .setSubject((claims.sub as string) ?? clientId)
      .setAudience((claims.aud as string) ?? t.issuer)
      .setIssuedAt(now)
      .setExpirationTime((claims.exp as number) ?? now + 60)
      .sign(signWith);
  };
  const tokenWith = (a: string, extra: Record<string, string> = {}) =>
    t.post('/token', {
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: a,
      ...extra,
    });

  test('a valid assertion works once; its replay is refused', async () => {
    const a = await assertion();
    assert.equal((await tokenWith(a)).status, 200);
    const again = await tokenWith(a);
    assert.equal(again.status, 401);
    assert.equal(again.body.error, 'invalid_client');
  });
  test('aud other than the issuer identifier → invalid_client', async () => {
    assert.equal((await tokenWith(await assertion({ aud: `${t.issuer}/other` }))).body.error, 'invalid_client');
  });
  test('iss ≠ sub, or an unknown client → invalid_client', async () => {
    assert.equal((await tokenWith(await assertion({ sub: 'someone' }))).body.error, 'invalid_client');
    assert.equal((await tokenWith(await assertion({ iss: 'unknown', sub: 'unknown' }))).body.error, 'invalid_client');
  });
  test('exp more than 5 minutes ahead → invalid_client; expired → invalid_client', async () => {
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await tokenWith(await assertion({ exp: now + 3600 }))).body.error, 'invalid_client');
    assert.equal((await tokenWith(await assertion({ exp: now - 120 }))).body.error, 'invalid_client');
  });
  test('signed by an unregistered key, with HS256, or alg none → invalid_client', async () => {
    const other = (await jose.generateKeyPair('ES256')).privateKey;
    assert.equal((await tokenWith(await assertion({}, {}, other))).body.error, 'invalid_client');
    const hs = await assertion({}, {}, new TextEncoder().encode('x'.repeat(32)), 'HS256');
    assert.equal((await tokenWith(hs)).body.error, 'invalid_client');
    const [, p] = (await assertion()).split('.');
    for (const alg of ['none', 'None', 'NONE']) {
      const none = `${Buffer.from(JSON.stringify({ alg })).toString('base64url')}.${p}.`;
      assert.equal((await tokenWith(none)).body.error, 'invalid_client', alg);
    }
  });
  test('wrong assertion type → invalid_request; client_id mismatch → invalid_client; not a JWT → invalid_client', async () => {
    const a = await assertion();
    const wrongType = await t.post('/token', {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:x',
      client_assertion: a,
    });
    assert.equal(wrongType.status, 400);
    assert.equal(wrongType.body.error, 'invalid_request');
    assert.equal((await tokenWith(await assertion(), { client_id: 'other' })).body.error, 'invalid_client');
    assert.equal((await tokenWith('not-a-jwt')).body.error, 'invalid_client');
  });
});

describe('failed authentication is rate limited', () => {
  test('after the limit, from the same source, even the right secret gets 429 with Retry-After', async () => {
    const t = await startTestIdp({ config: { authFailureLimit: 3 } });
    try {
      const c = await t.register({ audiences: [AUD] });
      for (let i = 0; i < 3; i++)
        assert.equal(
          (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(c.client_id, 'wrong') }))
            .status,
          401,
        );
      const res = await t.post(
        '/token',
        { grant_type: 'client_credentials' },
        { authorization: basic(c.client_id, c.client_secret) },
      );
      assert.equal(res.status, 429);
      assert.equal(res.body.error, 'invalid_client');
      assert.ok(Number(res.headers.get('retry-after')) > 0);
    } finally {
      await t.close();
    }
  });

  test("failures from other sources never lock a client out: the victim's right secret still gets a token (issue 11, finding 4)", async () => {
    const t = await startTestIdp({ config: { authFailureLimit: 3 } });
    try {
      const victim = await t.register({ audiences: [AUD] });
      const from = (address: string) => tlsFetch(t.caPem, undefined, { localAddress: address });
      const token = (f: typeof fetch, secret: string) =>
        f(`${t.issuer}/token`, {
          method: 'POST',
          headers: {
            authorization: basic(victim.client_id, secret),
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: 'grant_type=client_credentials',
        });
      // One attacker source: throttled after the limit, itself only.
      const attacker = from('127.0.0.2');
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await token(attacker, 'wrong')).status);
      assert.deepEqual(statuses, [401, 401, 401, 429, 429, 429]);
      assert.equal(
        (await token(from('127.0.0.1'), victim.client_secret)).status,
        200,
        'the victim, from its own address, is not refused',
      );
      // Many attacker sources, each under the limit: the client's own count passes the limit —
      // further failures are slowed (429), the right credential still works.
      for (const a of ['127.0.0.3', '127.0.0.4', '127.0.0.5'])
        for (let i = 0; i < 2; i++) await token(from(a), 'wrong');
      const late = await token(from('127.0.0.6'), 'wrong');
      assert.equal(late.status, 429);
      assert.ok(Number(late.headers.get('retry-after')) > 0);
      assert.equal((await token(from('127.0.0.6'), victim.client_secret)).status, 200);
      assert.equal((await token(from('127.0.0.1'), victim.client_secret)).status, 200);
      // The audit still names each failure's cause.
      const failed = await auditEvents(t.idp.storage, { type: 'client.auth_failed', limit: 100 });
      assert.ok(failed.some((e) => e.reason === 'bad_secret' && e.source_ip === '127.0.0.6'));
    } finally {
      await t.close();
    }
  });

  test('unknown and known client ids cost the same to refuse (issue 11, finding 15): every refusal waits for one floor', async () => {
    const t = await startTestIdp({ config: { authFailureLimit: 100_000 } });
    try {
      const known = await t.register({ audiences: [AUD] });
      // Warm: the known client is cached, as an attacker would make sure it is.
      await t.post(
        '/token',
        { grant_type: 'client_credentials' },
        { authorization: basic(known.client_id, known.client_secret) },
      );
      const time = async (id: string) => {
        const started = performance.now();
        const res = await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(id, 'wrong') });
        assert.equal(res.status, 401);
        return performance.now() - started;
      };
      const a: number[] = [];
      const b: number[] = [];
      for (let i = 0; i < 60; i++) {
        a.push(await time(known.client_id));
        b.push(await time(`nobody-${i % 7}`));
      }
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
      assert.ok(Math.min(...a, ...b) >= 9.5, `a refusal took ${Math.min(...a, ...b).toFixed(2)} ms`);
      assert.ok(Math.abs(median(a) - median(b)) < 2, `medians ${median(a).toFixed(2)} vs ${median(b).toFixed(2)} ms`);
    } finally {
      await t.close();
    }
  });
});
