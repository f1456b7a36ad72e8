import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { getListFromStatusListJWT, getStatusListFromJWT } from '@sd-jwt/jwt-status-list';
import * as jose from 'jose';
import { basicAuth, startTestIdp, type TestIdp } from '@latchkey/testkit';

const ORDERS = 'https://orders.internal';
const MEDIA = 'application/statuslist+jwt';

/**
 * Token Status List (draft-ietf-oauth-status-list) as a verifier with no Latchkey code sees it:
 * the token's `status.status_list` read by @sd-jwt/jwt-status-list (an independent implementation
 * of the draft), the list fetched over HTTPS, its signature checked by jose against /jwks, and
 * the bit read by @sd-jwt/jwt-status-list — before and after each kind of revocation.
 */
describe('Token Status List', () => {
  let t: TestIdp;
  const basic = (c: Record<string, any>) => basicAuth(c.client_id, c.client_secret);
  const tokenFor = async (c: Record<string, any>): Promise<string> => {
    const res = await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(c) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.access_token as string;
  };
  const fetchList = (uri: string, headers: Record<string, string> = {}) =>
    t.fetch(uri, { headers: { accept: MEDIA, ...headers } });
  /** The status of a token as a stock verifier finds it: 0 valid, 1 revoked. */
  const statusOf = async (token: string): Promise<number> => {
    const ref = getStatusListFromJWT(token);
    const res = await fetchList(ref.uri);
    assert.equal(res.status, 200);
    const jws = await res.text();
    const jwks = jose.createLocalJWKSet(await (await t.fetch(`${t.issuer}/jwks`)).json());
    const { payload } = await jose.jwtVerify(jws, jwks, { issuer: t.issuer, typ: 'statuslist+jwt', subject: ref.uri });
    assert.equal(typeof payload.ttl, 'number');
    return getListFromStatusListJWT(jws).getStatus(ref.idx);
  };

  before(async () => {
    t = await startTestIdp();
  });
  after(async () => {
    await t.close();
  });

  test('a token names a list; the list is served signed, cacheable and open to browsers, and says VALID', async () => {
    const c = await t.register({ audiences: [ORDERS] });
    const token = await tokenFor(c);
    const ref = getStatusListFromJWT(token);
    assert.match(ref.uri, /\/sl\/\d+$/);
    assert.ok(ref.uri.startsWith(`${t.issuer}/sl/`));
    const res = await fetchList(ref.uri);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), MEDIA);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const maxAge = Number(/max-age=(\d+)/.exec(res.headers.get('cache-control') ?? '')?.[1]);
    assert.ok(maxAge > 0 && maxAge <= 60, `max-age ${maxAge}`);
    const jws = await res.text();
    assert.equal(jose.decodeProtectedHeader(jws).typ, 'statuslist+jwt');
    const claims = jose.decodeJwt(jws);
    assert.equal(claims.sub, ref.uri);
    assert.equal(claims.ttl, 60);
    assert.equal((claims.exp as number) - (claims.iat as number), 900);
    assert.deepEqual(Object.keys(claims.status_list as object).sort(), ['aggregation_uri', 'bits', 'lst']);
    assert.equal(await statusOf(token), 0);
    // The list has as many entries as the configured size (1,048,576 by default).
    assert.equal(getListFromStatusListJWT(jws).statusList.length, 1_048_576);

    // A strong ETag: the same list again is 304.
    const etag = res.headers.get('etag') ?? '';
    assert.match(etag, /^"[\w-]+"$/);
    assert.equal((await fetchList(ref.uri, { 'if-none-match': etag })).status, 304);
  });

  test("a token's jti names its list and index (what a revocation by jti alone finds it by)", async () => {
    const { statusJti, statusOfJti } = await import('../../src/status/status_jti.ts');
    const c = await t.register({ audiences: [ORDERS] });
    const token = await tokenFor(c);
    const { jti } = jose.decodeJwt(token);
    const ref = getStatusListFromJWT(token);
    assert.equal((jti as string).length, 16);
    assert.deepEqual(statusOfJti(jti as string), { listId: Number(ref.uri.split('/').pop()), idx: ref.idx });
    assert.deepEqual(statusOfJti(statusJti(4_000_000_000, 16_777_215)), { listId: 4_000_000_000, idx: 16_777_215 });
    assert.equal(statusOfJti('short'), undefined);
    assert.notEqual(statusJti(1, 1), statusJti(1, 1), 'random bytes besides the list and index');
  });

  test("RFC 7009 revocation sets the token's bit, and no other", async () => {
    const c = await t.register({ audiences: [ORDERS] });
    const [a, b] = [await tokenFor(c), await tokenFor(c)];
    assert.notEqual(getStatusListFromJWT(a).idx, getStatusListFromJWT(b).idx, 'never the same index twice');
    assert.equal((await t.post('/revoke', { token: a }, { authorization: basic(c) })).status, 200);
    assert.equal(await statusOf(a), 1);
    assert.equal(await statusOf(b), 0);
  });

  test('revoking a client, a subject or a signing key sets the bits of every token it covers', async () => {
    const [c1, c2, c3] = [
      await t.register({ audiences: [ORDERS] }),
      await t.register({ audiences: [ORDERS] }),
      await t.register({ audiences: [ORDERS] }),
    ];
    const [t1, t2, t3] = [await tokenFor(c1), await tokenFor(c2), await tokenFor(c3)];
    assert.equal((await t.admin(`/admin/clients/${c1.client_id}/revoke`)).status, 200);
    assert.equal(await statusOf(t1), 1, 'client revoked');
    assert.equal(await statusOf(t2), 0);
    assert.equal((await t.admin(`/admin/subjects/${c2.client_id}/revoke`)).status, 200);
    assert.equal(await statusOf(t2), 1, 'subject revoked');
    assert.equal(await statusOf(t3), 0);
    // A token issued after its subject's revocation is not covered by it (iat after not-before).
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(await statusOf(await tokenFor(c2)), 0);

    // Key compromise: a new key first, then the old one revoked; its tokens are INVALID.
    const kid = jose.decodeProtectedHeader(t3).kid as string;
    assert.equal((await t.admin('/admin/keys/rotate', {})).status, 200);
    const keys = (await (await t.admin('/admin/keys', undefined, 'GET')).json()) as {
      keys: { kid: string; state: string }[];
    };
    if (!keys.keys.some((k) => k.state === 'current' && k.kid !== kid)) {
      assert.equal((await t.admin('/admin/keys/rotate', {})).status, 200);
    }
    const revoked = await t.admin(`/admin/keys/${kid}/revoke`);
    assert.equal(revoked.status, 200, await revoked.text());
    assert.equal(await statusOf(t3), 1, 'signing key revoked');
    // The list itself is now signed by the new key, which jose found in /jwks.
    const jws = await (await fetchList(getStatusListFromJWT(t3).uri)).text();
    assert.notEqual(jose.decodeProtectedHeader(jws).kid, kid);
  });

  test('the aggregation lists the live lists, and discovery names it', async () => {
    const m = await (await t.fetch(`${t.issuer}/.well-known/oauth-authorization-server`)).json();
    assert.equal(m.status_list_aggregation_endpoint, `${t.issuer}/sl`);
    const res = await t.fetch(`${t.issuer}/sl`);
    assert.equal(res.status, 200);
    const { status_lists } = (await res.json()) as { status_lists: string[] };
    const c = await t.register({ audiences: [ORDERS] });
    assert.ok(status_lists.includes(getStatusListFromJWT(await tokenFor(c)).uri));
  });

  test('bad requests: unknown list 404, a list number that is no number 400, CWT only 406, historical 501', async () => {
    const c = await t.register({ audiences: [ORDERS] });
    const uri = getStatusListFromJWT(await tokenFor(c)).uri;
    const cases: [string, Record<string, string>, number][] = [
      [`${t.issuer}/sl/999999`, {}, 404],
      [`${t.issuer}/sl/x1`, {}, 400],
      [uri, { accept: 'application/statuslist+cwt' }, 406],
      [`${uri}?time=1686925000`, {}, 501],
    ];
    for (const [url, headers, status] of cases) {
      const res = await fetchList(url, headers);
      assert.equal(res.status, status, url);
      const body = (await res.json()) as { error: string; error_description: string };
      assert.equal(body.error, 'invalid_request');
      assert.ok(body.error_description.length > 0);
    }
    // Any media range that admits it, or none at all, is fine.
    for (const accept of ['*/*', 'application/*', `${MEDIA};q=0.9, application/json`])
      assert.equal((await t.fetch(uri, { headers: { accept } })).status, 200, accept);
  });
});

describe('Token Status List: shards, restarts, gzip, and turned off', () => {
  test('lists of a small size roll over; a restarted IdP never hands out an index twice', async () => {
    const t = await startTestIdp({ config: { statusListSize: 2048 } });
    const dataDir = t.dataDir;
    let port = 0;
    try {
      port = Number(new URL(t.issuer).port);
      const c = await t.register({ audiences: [ORDERS] });
      const res = await t.post(
        '/token',
        { grant_type: 'client_credentials' },
        { authorization: basicAuth(c.client_id, c.client_secret) },
      );
      const first = getStatusListFromJWT(res.body.access_token);
      assert.equal(first.uri, `${t.issuer}/sl/1`);
      // The list has 2048 entries: 256 bytes before compression.
      const jws = await (await t.fetch(first.uri, { headers: { accept: MEDIA } })).text();
      assert.equal(getListFromStatusListJWT(jws).statusList.length, 2048);
      await t.idp.close();
      const again = await startTestIdp({ dataDir, port, adminToken: t.adminToken, config: { statusListSize: 2048 } });
      try {
        const res2 = await again.post(
          '/token',
          { grant_type: 'client_credentials' },
          { authorization: basicAuth(c.client_id, c.client_secret) },
        );
        const second = getStatusListFromJWT(res2.body.access_token);
        // The first replica reserved indices 0-1023 of list 1 (and perhaps 1024-2047); the next starts after them.
        assert.ok(
          second.uri === `${again.issuer}/sl/2` || (second.uri === first.uri && second.idx >= 1024),
          `${second.uri} #${second.idx}`,
        );
        assert.notEqual(`${second.uri}#${second.idx}`, `${first.uri}#${first.idx}`);
        // Both lists are served (the first still covers an unexpired token).
        assert.equal((await again.fetch(first.uri, { headers: { accept: MEDIA } })).status, 200);
      } finally {
        await again.close();
      }
    } finally {
      await t.close().catch(() => undefined);
    }
  });

  test('a list is sent gzip-encoded to a client that accepts it', async () => {
    const t = await startTestIdp();
    try {
      const c = await t.register({ audiences: [ORDERS] });
      const basic = basicAuth(c.client_id, c.client_secret);
      const tokens: string[] = [];
      for (let i = 0; i < 20; i++)
        tokens.push(
          (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic })).body.access_token,
        );
      // Every other token revoked.
      for (const token of tokens.filter((_, i) => i % 2 === 0))
        assert.equal((await t.post('/revoke', { token }, { authorization: basic })).status, 200);
      const uri = getStatusListFromJWT(tokens[0] as string).uri;
      // undici decodes gzip itself: ask over node:https to see the encoding on the wire.
      const { request } = await import('node:https');
      const raw = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
        const u = new URL(uri);
        request(
          {
            host: u.hostname,
            port: u.port,
            path: u.pathname,
            ca: t.caPem,
            headers: { accept: MEDIA, 'accept-encoding': 'gzip' },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res
              .on('data', (d) => chunks.push(d))
              .on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
          },
        )
          .on('error', reject)
          .end();
      });
      assert.equal(raw.encoding, 'gzip');
      const list = getListFromStatusListJWT(gunzipSync(raw.body).toString());
      tokens.forEach((token, i) => assert.equal(list.getStatus(getStatusListFromJWT(token).idx), i % 2 === 0 ? 1 : 0));
    } finally {
      await t.close();
    }
  });

  test('turned off: no status claim, no lists, no aggregation in discovery', async () => {
    const t = await startTestIdp({ config: { statusList: false } });
    try {
      const c = await t.register({ audiences: [ORDERS] });
      const res = await t.post(
        '/token',
        { grant_type: 'client_credentials' },
        { authorization: basicAuth(c.client_id, c.client_secret) },
      );
      assert.equal(jose.decodeJwt(res.body.access_token).status, undefined);
      assert.equal((await t.fetch(`${t.issuer}/sl/1`)).status, 404);
      const m = await (await t.fetch(`${t.issuer}/.well-known/oauth-authorization-server`)).json();
      assert.equal(m.status_list_aggregation_endpoint, undefined);
    } finally {
      await t.close();
    }
  });
});
