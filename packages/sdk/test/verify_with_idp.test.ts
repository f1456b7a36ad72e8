import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createVerifier, VerifyError } from '@latchkey/sdk/verify';
import { basicAuth, FakeClock, freePort, startTestIdp, type TestIdp } from '@latchkey/testkit';

const AUD = 'https://orders.internal';
const basic = basicAuth;
const token = async (t: TestIdp, c: Record<string, string>) =>
  (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(c) })).body
    .access_token as string;
const codeOf = async (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof VerifyError ? e.code : `unexpected: ${String(e)}`),
  );
const waitFor = async (cond: () => Promise<boolean>, ms: number): Promise<number> => {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - t0;
};

test('against a real IdP: verify, revocations pushed within a second, revoked keys, fail-static, resume', {
  timeout: 60_000,
}, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-sdk-'));
  const port = await freePort();
  let t = await startTestIdp({ dataDir, port });
  const service = (await t.register({ client_id: 'orders', audiences: ['https://inventory.internal'] })) as Record<
    string,
    string
  >;
  const caller = (await t.register({ client_id: 'checkout', audiences: [AUD], scope: 'orders:read' })) as Record<
    string,
    string
  >;
  // The verifier's time moves when the test says so (its I/O is real).
  const clock = new FakeClock();
  const v = await createVerifier({
    issuer: t.issuer,
    audience: AUD,
    fetch: t.fetch,
    clock,
    maxStaleness: 3,
    credentials: { clientId: service.client_id!, clientSecret: service.client_secret! },
  });
  try {
    await waitFor(async () => v.health().revocations.feed === 'connected', 3000);
    const tok = await token(t, caller);
    const claims = await v.verify(tok);
    assert.equal(claims.client_id, 'checkout');
    assert.equal(claims.scope, 'orders:read');

    // Revoked at the IdP → refused locally within one second, with no call on the request path.
    assert.equal((await t.post('/revoke', { token: tok }, { authorization: basic(caller) })).status, 200);
    const ms = await waitFor(async () => (await codeOf(v.verify(tok))) === 'token_revoked', 1000);
    assert.ok(ms < 1000);

    // A revoked client's tokens.
    const other = (await t.register({ audiences: [AUD] })) as Record<string, string>;
    const otherTok = await token(t, other);
    assert.equal(await codeOf(v.verify(otherTok)), 'ok');
    await t.fetch(`${t.issuer}/admin/clients/${other.client_id}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: '{}',
    });
    await waitFor(async () => (await codeOf(v.verify(otherTok))) === 'token_revoked', 1000);

    // A revoked key's tokens; tokens of the key that replaces it verify (pre-loaded from the key feed).
    const before = await token(t, caller);
    assert.equal(await codeOf(v.verify(before)), 'ok');
    const kid = (await t.idp.storage.getCurrentKey())!.kid;
    await t.fetch(`${t.issuer}/admin/keys/${kid}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: '{}',
    });
    await waitFor(async () => (await codeOf(v.verify(before))) === 'token_revoked', 1000);
    assert.equal(await codeOf(v.verify(await token(t, caller))), 'ok');

    // The IdP goes away: verification continues from cache; health says how stale it is.
    const survivor = await token(t, caller);
    assert.equal(await codeOf(v.verify(survivor)), 'ok');
    await t.close();
    await waitFor(async () => v.health().revocations.feed === 'polling', 3000);
    assert.equal(await codeOf(v.verify(survivor)), 'ok', 'fail-static');
    const h = v.health();
    assert.equal(h.revocations.feed, 'polling');
    // Beyond maxStaleness (3 s here; 1 h by default) it fails closed.
    clock.advance(2900);
    assert.equal(v.health().ok, true, 'within maxStaleness');
    clock.advance(600);
    assert.equal(v.health().ok, false);
    assert.equal(await codeOf(v.verify(survivor)), 'issuer_unreachable');

    // The IdP is back: the feed resumes from its cursor and revocations made since arrive.
    t = await startTestIdp({ dataDir, port });
    await waitFor(async () => v.health().ok, 10_000);
    assert.equal(await codeOf(v.verify(survivor)), 'ok');
    assert.equal((await t.post('/revoke', { token: survivor }, { authorization: basic(caller) })).status, 200);
    await waitFor(async () => (await codeOf(v.verify(survivor))) === 'token_revoked', 5000);
  } finally {
    v.close();
    await t.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
