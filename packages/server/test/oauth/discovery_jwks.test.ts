import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestIdp, type TestIdp } from '@latchkey/testkit';

describe('discovery, JWKS and health', () => {
  let t: TestIdp;
  before(async () => {
    t = await startTestIdp();
  });
  after(() => t.close());

  test('RFC 8414 metadata at both well-known paths is the same document', async () => {
    const a = await (await t.fetch(`${t.issuer}/.well-known/oauth-authorization-server`)).json();
    const b = await (await t.fetch(`${t.issuer}/.well-known/openid-configuration`)).json();
    assert.deepEqual(a, b);
    assert.equal((a as any).issuer, t.issuer);
    assert.deepEqual((a as any).access_token_signing_alg_values_supported, ['ES256']);
  });

  test('JWKS: public members only, kid/alg/use, Cache-Control and ETag with 304', async () => {
    const res = await t.fetch(`${t.issuer}/jwks`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=300');
    assert.match(res.headers.get('content-type') ?? '', /^application\/jwk-set\+json/);
    const etag = res.headers.get('etag');
    assert.ok(etag);
    const { keys } = (await res.json()) as { keys: Record<string, string>[] };
    assert.equal(keys.length, 2, 'the current key and the next one, announced before it signs');
    for (const k of keys) {
      assert.deepEqual(Object.keys(k).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
      assert.equal(k.alg, 'ES256');
      assert.equal(k.use, 'sig');
      assert.ok(k.kid!.length <= 16);
    }
    const again = await t.fetch(`${t.issuer}/jwks`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
  });

  test('healthz and readyz', async () => {
    assert.deepEqual(await (await t.fetch(`${t.issuer}/healthz`)).json(), { status: 'ok' });
    const ready = await t.fetch(`${t.issuer}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), {
      status: 'ready',
      checks: { storage: 'ok', keys: 'ok', policy: 'ok', feed: 'ok' },
    });
  });

  test('readyz reports 503 when storage is unreachable', async () => {
    const other = await startTestIdp();
    const ping = other.idp.storage.ping.bind(other.idp.storage);
    other.idp.storage.ping = async () => {
      throw new Error('database unreachable');
    };
    try {
      const res = await other.fetch(`${other.issuer}/readyz`);
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), {
        status: 'not_ready',
        checks: { storage: 'failed', keys: 'ok', policy: 'ok', feed: 'ok' },
      });
    } finally {
      other.idp.storage.ping = ping;
      await other.close();
    }
  });

  test('keys and the admin token survive a restart on the same data folder; private keys are sealed', async () => {
    const { mkdtempSync, rmSync, readFileSync, readdirSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-restart-'));
    try {
      const first = await startTestIdp({ dataDir: dir });
      const jwks1 = await (await first.fetch(`${first.issuer}/jwks`)).text();
      await first.close();
      const second = await startTestIdp({ dataDir: dir });
      const jwks2 = await (await second.fetch(`${second.issuer}/jwks`)).text();
      await second.close();
      assert.equal(jwks1, jwks2);
      for (const f of readdirSync(dir).filter((n) => n.startsWith('latchkey.db'))) {
        assert.ok(!readFileSync(join(dir, f)).toString('latin1').includes('BEGIN PRIVATE KEY'));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('SQLite gone (file closed under the IdP): requests answer 503 temporarily_unavailable, not 500', async () => {
  const t = await startTestIdp({ config: { clientCacheTtl: 0 } });
  try {
    const c = await t.register({ audiences: ['https://a.internal'] });
    // Close the database under the running server, as a failed disk or a deleted file would.
    (t.idp.storage as unknown as { db: { close(): void } }).db.close();
    const res = await t.post(
      '/token',
      { grant_type: 'client_credentials' },
      { authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}` },
    );
    assert.equal(res.status, 503);
    assert.equal(res.body.error, 'temporarily_unavailable');
    assert.equal((await t.fetch(`${t.issuer}/readyz`)).status, 503);
  } finally {
    await t.close().catch(() => {});
  }
});
