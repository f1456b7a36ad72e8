import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { auditEvents, FakeClock, startTestIdp, type TestIdp, userTokens } from '@latchkey/testkit';
import { sha256 } from '../../src/secrets.ts';

const APP = 'http://127.0.0.1/callback';
const PASSWORD = 'seven bridges of the old town';

describe('refresh tokens: rotated at every use, reuse revokes the sign-in, a lifetime rotation does not extend', () => {
  let t: TestIdp;
  let clock: FakeClock;
  let sub: string;

  before(async () => {
    clock = new FakeClock();
    t = await startTestIdp({ clock, config: { refreshTokenLifetime: 3600, refreshReuseGrace: 10 } });
    await t.register({
      client_id: 'app',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [APP],
      audiences: ['https://orders.internal'],
    });
    await t.register({
      client_id: 'codes-only',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      redirect_uris: [APP],
      audiences: ['https://orders.internal'],
    });
    const user = (await (await t.admin('/admin/users', { username: 'grace', password: PASSWORD })).json()) as {
      sub: string;
    };
    sub = user.sub;
  });
  after(() => t.close());

  const signIn = (clientId = 'app') =>
    userTokens(t, { clientId, redirectUri: APP, username: 'grace', password: PASSWORD, scope: 'openid profile' });
  const refresh = (token: string, extra: Record<string, string> = {}) =>
    t.post('/token', { grant_type: 'refresh_token', client_id: 'app', refresh_token: token, ...extra });
  const userinfo = (access: string) =>
    t.fetch(`${t.issuer}/userinfo`, { headers: { authorization: `Bearer ${access}` } }).then((r) => r.status);

  test('a client registered for refresh_token gets one with the code; each use gives a new one; a retry within the grace is refused without harm', async () => {
    assert.equal((await signIn('codes-only')).refresh_token, undefined, 'not registered for it: none');
    const first = await signIn();
    assert.match(first.refresh_token ?? '', /^[A-Za-z0-9_-]{43}$/, 'opaque, 256 bits');
    const stored = await t.idp.storage.getRefreshToken(sha256(first.refresh_token as string));
    assert.ok(stored, 'stored by its hash');
    assert.equal(JSON.stringify(stored).includes(first.refresh_token as string), false, 'never the token itself');

    const second = await refresh(first.refresh_token as string);
    assert.equal(second.status, 200);
    assert.notEqual(second.body.refresh_token, first.refresh_token);
    assert.equal(second.body.scope, 'openid profile');
    assert.equal(await userinfo(second.body.access_token), 200);
    clock.advanceSeconds(5);
    const retry = await refresh(first.refresh_token as string);
    assert.deepEqual([retry.status, retry.body.error], [400, 'invalid_grant']);
    assert.match(retry.body.error_description, /already used; use the one that came back/);
    const third = await refresh(second.body.refresh_token);
    assert.equal(third.status, 200, 'the family is untouched by a retry');
    assert.equal(await userinfo(second.body.access_token), 200);
    const narrowed = await refresh(third.body.refresh_token, { scope: 'openid' });
    assert.deepEqual([narrowed.status, narrowed.body.scope], [200, 'openid']);
    const widened = await refresh(narrowed.body.refresh_token, { scope: 'openid email' });
    assert.deepEqual([widened.status, widened.body.error], [400, 'invalid_scope']);
  });

  test('reuse after the grace: invalid_grant, the whole sign-in revoked (its refresh and access tokens), audited, an alert raised', async () => {
    const first = await signIn();
    const second = await refresh(first.refresh_token as string);
    const third = await refresh(second.body.refresh_token);
    assert.equal(third.status, 200);
    clock.advanceSeconds(11);
    const stolen = await refresh(first.refresh_token as string);
    assert.deepEqual([stolen.status, stolen.body.error], [400, 'invalid_grant']);
    assert.match(stolen.body.error_description, /every token of this sign-in is revoked/);
    const legit = await refresh(third.body.refresh_token);
    assert.deepEqual([legit.status, legit.body.error], [400, 'invalid_grant'], 'the newest one dies with the family');
    for (const access of [first.access_token, second.body.access_token, third.body.access_token])
      assert.equal(await userinfo(access), 401, 'every access token of the family is revoked');
    await t.idp.audit.flush();
    const [reused] = (await auditEvents(t.idp.storage, { type: 'token.refresh_reused' })).slice(-1);
    assert.equal(reused?.subject, sub);
    assert.equal(reused?.detail?.revoked_tokens, 3);
    assert.equal(reused?.detail?.rotated_seconds_ago, 11);
    let alerts: { detector: string; key: string }[] = [];
    for (let i = 0; i < 50 && !alerts.some((a) => a.detector === 'refresh_token_reuse'); i++) {
      alerts = ((await (await t.admin('/admin/alerts', undefined, 'GET')).json()) as { alerts: typeof alerts }).alerts;
      if (!alerts.some((a) => a.detector === 'refresh_token_reuse')) await new Promise((r) => setTimeout(r, 50));
    }
    const alert = alerts.find((a) => a.detector === 'refresh_token_reuse');
    assert.equal(alert?.key, `user:${sub}`);
  });

  test('two refreshes with one token at the same moment: exactly one succeeds', async () => {
    const first = await signIn();
    const results = await Promise.all([1, 2, 3].map(() => refresh(first.refresh_token as string)));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 400, 400]);
    const winner = results.find((r) => r.status === 200);
    assert.equal((await refresh(winner?.body.refresh_token)).status, 200, 'and the family lives on');
  });

  test('the sign-in lifetime is absolute: rotating does not extend it', async () => {
    const first = await signIn();
    clock.advanceSeconds(1800);
    const mid = await refresh(first.refresh_token as string);
    assert.equal(mid.status, 200);
    clock.advanceSeconds(1801);
    const late = await refresh(mid.body.refresh_token);
    assert.deepEqual([late.status, late.body.error], [400, 'invalid_grant']);
    assert.match(late.body.error_description, /expired; sign in again/);
  });

  test('disabling the user ends their sign-ins; RFC 7009 revocation of a refresh token ends its sign-in', async () => {
    const a = await signIn();
    const b = await signIn();
    const revoked = await t.post('/revoke', { token: b.refresh_token as string, client_id: 'app' });
    assert.equal(revoked.status, 200);
    assert.equal((await refresh(b.refresh_token as string)).body.error, 'invalid_grant');
    assert.equal(await userinfo(b.access_token), 401, 'its access token too');
    assert.equal((await t.post('/revoke', { token: a.refresh_token as string, client_id: 'codes-only' })).status, 400);
    clock.advanceSeconds(1);
    await t.admin('/admin/users/grace/disable', {});
    clock.advanceSeconds(1);
    const after = await refresh(a.refresh_token as string);
    assert.deepEqual([after.status, after.body.error], [400, 'invalid_grant']);
    await t.admin('/admin/users/grace/enable', {});
    assert.equal((await refresh(a.refresh_token as string)).status, 400, 'enabling again does not bring it back');
  });
});
