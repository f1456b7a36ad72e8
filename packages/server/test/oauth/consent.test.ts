import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { auditEvents, Browser, startTestIdp, type TestIdp } from '@latchkey/testkit';

const APP = 'http://127.0.0.1/callback';
const PASSWORD = 'lantern by the north gate';
const ORDERS = 'https://orders.internal';

describe('consent for a third-party client (consent_required), driven by openid-client', () => {
  let t: TestIdp;
  let alice: Record<string, any>;
  let partner: oidc.Configuration;
  let browser: Browser;

  before(async () => {
    t = await startTestIdp();
    await t.register({
      client_id: 'partner',
      client_name: 'Partner analytics',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [APP],
      audiences: [ORDERS],
      consent_required: true,
    });
    alice = await (
      await t.admin('/admin/users', { username: 'alice', password: PASSWORD, email: 'a@example.com' })
    ).json();
    partner = await oidc.discovery(new URL(t.issuer), 'partner', undefined, oidc.None(), {
      [oidc.customFetch]: t.fetch as oidc.CustomFetch,
    });
    partner[oidc.customFetch] = t.fetch as oidc.CustomFetch;
    browser = new Browser(t);
  });
  after(() => t.close());

  async function authorize(scope: string, extra: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(partner, {
      redirect_uri: APP,
      scope,
      resource: ORDERS,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      ...extra,
    });
    return { url, checks: { pkceCodeVerifier: verifier, expectedState: state } };
  }
  const back = (res: Response) => new URL(res.headers.get('location') as string);

  test('registration: consent and user attributes apply to the code flow only', async () => {
    for (const extra of [{ consent_required: true }, { user_attributes: ['department'] }]) {
      const res = await t.admin('/register', { client_id: 'batch', audiences: [ORDERS], ...extra });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as any).error, 'invalid_client_metadata');
    }
  });

  test('the page says what is asked; deny → access_denied with state and iss; nothing is remembered', async () => {
    const { url, checks } = await authorize('openid email');
    const signedIn = await browser.signIn(url, 'alice', PASSWORD);
    assert.equal(signedIn.status, 200, 'the consent page, not a code');
    assert.match(signedIn.headers.get('content-security-policy') ?? '', /form-action 'self' http:\/\/127\.0\.0\.1/);
    const page = await signedIn.text();
    assert.match(page, /Allow Partner analytics\?/);
    assert.match(page, /Signed in as alice/);
    assert.match(page, /See your email address/);
    assert.match(page, new RegExp(`Act for you at ${ORDERS}`));
    assert.equal(/<script/i.test(page), false);
    const denied = await browser.submit(page, '/authorize/consent', { decision: 'deny' });
    assert.equal(denied.status, 303);
    const l = back(denied);
    assert.deepEqual(
      [l.searchParams.get('error'), l.searchParams.get('state'), l.searchParams.get('iss'), l.searchParams.get('code')],
      ['access_denied', checks.expectedState, t.issuer, null],
    );
    const e = (await auditEvents(t.idp.storage, { type: 'user.consent_denied' })).at(-1);
    assert.deepEqual(
      [e?.subject, e?.client_id, e?.outcome, e?.detail?.scope, e?.detail?.resource],
      [alice.sub, 'partner', 'failure', 'openid email', [ORDERS]],
    );
    // The session stands (the user did sign in), and the next request asks again.
    const again = await browser.fetch(String((await authorize('openid email')).url));
    assert.equal(again.status, 200);
    assert.match(await again.text(), /Allow Partner analytics\?/);
  });

  test('allow → a code and tokens; the same request later needs no page; more scope, or prompt=consent, asks again; prompt=none cannot ask', async () => {
    const first = await authorize('openid');
    const page = await (await browser.fetch(String(first.url))).text(); // single sign-on: straight to consent
    assert.match(page, /Know that it is you/);
    const allowed = await browser.submit(page, '/authorize/consent', { decision: 'allow' });
    assert.equal(allowed.status, 303);
    const tokens = await oidc.authorizationCodeGrant(partner, back(allowed), first.checks);
    assert.equal(tokens.claims()?.sub, alice.sub);
    const granted = (await auditEvents(t.idp.storage, { type: 'user.consent_granted' })).at(-1);
    assert.deepEqual([granted?.subject, granted?.client_id, granted?.detail?.scope], [alice.sub, 'partner', 'openid']);

    const same = await authorize('openid');
    const direct = await browser.fetch(String(same.url));
    assert.equal(direct.status, 303, 'agreed before: no page');
    assert.ok(back(direct).searchParams.get('code'));

    const silent = await browser.fetch(String((await authorize('openid email', { prompt: 'none' })).url));
    assert.equal(back(silent).searchParams.get('error'), 'consent_required');

    const more = await authorize('openid email');
    const asked = await browser.fetch(String(more.url));
    assert.equal(asked.status, 200, 'email was not agreed to');
    const code = back(await browser.submit(await asked.text(), '/authorize/consent', { decision: 'allow' }));
    await oidc.authorizationCodeGrant(partner, code, more.checks);
    assert.equal((await browser.fetch(String((await authorize('email')).url))).status, 303, 'agreements add up');

    const forced = await browser.fetch(String((await authorize('openid', { prompt: 'consent' })).url));
    assert.equal(forced.status, 200);
    assert.match(await forced.text(), /Allow Partner analytics\?/);
  });

  test('a consent form is bound to its browser and step: another browser, a made-up decision, or a replayed sign-in step → refused', async () => {
    const { url } = await authorize('openid', { prompt: 'consent' });
    const page = await (await browser.fetch(String(url))).text();
    const stranger = new Browser(t);
    assert.equal((await stranger.submit(page, '/authorize/consent', { decision: 'allow' })).status, 403);
    assert.equal((await browser.submit(page, '/authorize/consent', { decision: 'maybe' })).status, 403);
    // The sign-in form's transaction is not a consent.
    const login = await (await new Browser(t).fetch(String(url))).text();
    assert.equal((await browser.submit(login, '/authorize/consent', { decision: 'allow' })).status, 403);
  });

  test('withdrawn by an administrator: listed, then deleted — the refresh token stops working and the next sign-in asks again', async () => {
    const listed = (await (await t.admin('/admin/users/alice/consents', undefined, 'GET')).json()) as any;
    assert.equal(listed.consents.length, 1);
    assert.deepEqual(
      [listed.consents[0].client_id, listed.consents[0].scope.split(' ').sort(), listed.consents[0].resource],
      ['partner', ['email', 'openid'], [ORDERS]],
    );
    const { url, checks } = await authorize('openid');
    const tokens = await oidc.authorizationCodeGrant(partner, back(await browser.fetch(String(url))), checks);
    assert.ok(tokens.refresh_token);

    const pending = await authorize('openid');
    const pendingCode = back(await browser.fetch(String(pending.url)));
    assert.ok(pendingCode.searchParams.get('code'), 'a code issued while the consent stood');

    assert.equal((await t.admin('/admin/users/alice/consents/partner', undefined, 'DELETE')).status, 204);
    await assert.rejects(
      oidc.authorizationCodeGrant(partner, pendingCode, pending.checks),
      (e: oidc.ResponseBodyError) => e.error === 'invalid_grant',
      'the code goes with the consent',
    );
    await assert.rejects(
      oidc.refreshTokenGrant(partner, tokens.refresh_token as string),
      (e: oidc.ResponseBodyError) => {
        assert.equal(e.error, 'invalid_grant');
        return true;
      },
    );
    await assert.rejects(
      oidc.fetchUserInfo(partner, tokens.access_token, alice.sub),
      (e: oidc.WWWAuthenticateChallengeError) => e.status === 401,
      'the access token the code gave is revoked too',
    );
    const revoked = (await auditEvents(t.idp.storage, { type: 'user.consent_revoked' })).at(-1);
    assert.deepEqual([revoked?.actor, revoked?.subject, revoked?.client_id], ['admin', alice.sub, 'partner']);
    assert.equal((await browser.fetch(String((await authorize('openid')).url))).status, 200, 'asked again');
    assert.equal((await t.admin('/admin/users/alice/consents/partner', undefined, 'DELETE')).status, 404);
    assert.equal((await t.admin('/admin/users/nobody/consents', undefined, 'GET')).status, 404);
  });
});
