import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { auditEvents, Browser, startTestIdp, type TestIdp } from '@latchkey/testkit';

const APP = 'http://127.0.0.1/callback';
const PASSWORD = 'lantern by the north gate';

describe('authorization code + PKCE and OpenID Connect, driven by openid-client', () => {
  let t: TestIdp;
  let alice: Record<string, any>;
  let spa: oidc.Configuration;
  let web: oidc.Configuration;
  let webSecret: string;

  before(async () => {
    t = await startTestIdp();
    await t.register({
      client_id: 'spa',
      client_name: 'Orders web app',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      redirect_uris: [APP],
      audiences: ['https://orders.internal'],
    });
    const confidential = await t.register({
      client_id: 'portal',
      grant_types: ['authorization_code'],
      redirect_uris: [APP],
      audiences: ['https://orders.internal'],
    });
    webSecret = confidential.client_secret;
    alice = (await (
      await t.admin('/admin/users', {
        username: 'alice',
        password: PASSWORD,
        email: 'alice@example.com',
        name: 'Alice',
        roles: ['reader'],
        groups: ['eu'],
      })
    ).json()) as Record<string, any>;
    const discover = async (clientId: string, auth: oidc.ClientAuth) => {
      const c = await oidc.discovery(new URL(t.issuer), clientId, undefined, auth, {
        [oidc.customFetch]: t.fetch as oidc.CustomFetch,
      });
      c[oidc.customFetch] = t.fetch as oidc.CustomFetch;
      return c;
    };
    spa = await discover('spa', oidc.None());
    web = await discover('portal', oidc.ClientSecretBasic(webSecret));
  });
  after(() => t.close());

  /** Everything openid-client checks, plus what it is given to check. */
  async function authorizationUrl(config: oidc.Configuration, extra: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: APP,
      scope: 'openid profile email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...extra,
    });
    return { url, checks: { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce } };
  }

  test('discovery names the authorization code flow: endpoints, S256 only, iss in responses, code only', () => {
    const m = spa.serverMetadata();
    assert.equal(m.authorization_endpoint, `${t.issuer}/authorize`);
    assert.equal(m.userinfo_endpoint, `${t.issuer}/userinfo`);
    assert.deepEqual(m.response_types_supported, ['code']);
    assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
    assert.equal(m.authorization_response_iss_parameter_supported, true);
    assert.deepEqual(m.grant_types_supported, [
      'client_credentials',
      'authorization_code',
      'refresh_token',
      'urn:ietf:params:oauth:grant-type:token-exchange',
      'urn:ietf:params:oauth:grant-type:jwt-bearer',
    ]);
    assert.ok(m.token_endpoint_auth_methods_supported?.includes('none'));
  });

  test('a public client: sign in, code with iss (RFC 9207), tokens; openid-client validates the ID token; /userinfo', async () => {
    const browser = new Browser(t);
    const { url, checks } = await authorizationUrl(spa);
    const page = await browser.fetch(String(url));
    assert.equal(page.status, 200);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /form-action 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(page.headers.get('cache-control'), 'no-store');
    const html = await page.text();
    assert.equal(/<script/i.test(html), false, 'no script at all: the page works without JavaScript');
    assert.match(html, /Orders web app/);
    assert.match(html, /<label for="username">/);
    const back = await browser.submit(html, '/authorize/login', { username: 'Alice', password: PASSWORD });
    assert.equal(back.status, 303);
    const location = new URL(back.headers.get('location') as string);
    assert.equal(`${location.origin}${location.pathname}`, APP);
    assert.equal(location.searchParams.get('iss'), t.issuer);
    assert.equal(location.searchParams.get('state'), checks.expectedState);

    const tokens = await oidc.authorizationCodeGrant(spa, location, checks);
    const id = tokens.claims();
    assert.ok(id);
    assert.equal(id.sub, alice.sub);
    assert.equal(id.aud, 'spa');
    assert.equal(id.nonce, checks.expectedNonce);
    assert.equal(typeof id.auth_time, 'number');
    assert.equal(id.preferred_username, 'alice');
    assert.equal(id.email, 'alice@example.com');

    const jwks = jose.createRemoteJWKSet(new URL(`${t.issuer}/jwks`), {
      [jose.customFetch]: t.fetch as jose.FetchImplementation,
    });
    const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, jwks, {
      issuer: t.issuer,
      audience: 'https://orders.internal',
      typ: 'at+jwt',
    });
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.sub, alice.sub);
    assert.equal(payload.client_id, 'spa');
    assert.deepEqual(payload.roles, ['reader']);
    assert.deepEqual(payload.groups, ['eu']);
    assert.deepEqual(payload.aud, ['https://orders.internal', t.issuer]);
    // An ID token is not an access token, and the other way round (RFC 8725 §3.11).
    await assert.rejects(
      jose.jwtVerify(tokens.id_token as string, jwks, { issuer: t.issuer, typ: 'at+jwt' }),
      (e: Error & { code?: string }) => e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    );

    const info = await oidc.fetchUserInfo(spa, tokens.access_token, alice.sub);
    assert.deepEqual(info, {
      sub: alice.sub,
      preferred_username: 'alice',
      name: 'Alice',
      updated_at: info.updated_at,
      email: 'alice@example.com',
      email_verified: false,
    });
    const login = (await auditEvents(t.idp.storage, { type: 'user.login' })).at(-1);
    assert.deepEqual(
      [login?.subject, login?.client_id, login?.outcome, login?.detail?.method],
      [alice.sub, 'spa', 'success', 'password'],
    );
  });

  test('a confidential client authenticates at /token; a code works once: the replay is invalid_grant and revokes the first token', async () => {
    const browser = new Browser(t);
    const { url, checks } = await authorizationUrl(web);
    const back = await browser.signIn(url, 'alice', PASSWORD);
    const location = new URL(back.headers.get('location') as string);
    const tokens = await oidc.authorizationCodeGrant(web, location, checks);
    assert.equal((await oidc.fetchUserInfo(web, tokens.access_token, alice.sub)).sub, alice.sub);
    await assert.rejects(oidc.authorizationCodeGrant(web, location, checks), (e: oidc.ResponseBodyError) => {
      assert.equal(e.error, 'invalid_grant');
      return true;
    });
    await assert.rejects(
      oidc.fetchUserInfo(web, tokens.access_token, alice.sub),
      (e: oidc.WWWAuthenticateChallengeError) => e.status === 401,
      'the token the code gave first is revoked',
    );
  });

  test('refused at /token: a code for another client, a wrong verifier, another redirect_uri → invalid_grant', async () => {
    const codeFor = async () => {
      const { url, checks } = await authorizationUrl(spa);
      const back = await new Browser(t).signIn(url, 'alice', PASSWORD);
      return { code: new URL(back.headers.get('location') as string).searchParams.get('code') as string, checks };
    };
    const token = (form: Record<string, string>, headers: Record<string, string> = {}) =>
      t.post('/token', { grant_type: 'authorization_code', redirect_uri: APP, ...form }, headers);
    const basic = { authorization: `Basic ${Buffer.from(`portal:${webSecret}`).toString('base64')}` };
    const a = await codeFor();
    const other = await token({ code: a.code, code_verifier: a.checks.pkceCodeVerifier }, basic);
    assert.deepEqual([other.status, other.body.error], [400, 'invalid_grant']);
    const b = await codeFor();
    const wrong = await token({ client_id: 'spa', code: b.code, code_verifier: oidc.randomPKCECodeVerifier() });
    assert.deepEqual([wrong.status, wrong.body.error], [400, 'invalid_grant']);
    const c = await codeFor();
    const elsewhere = await token({
      client_id: 'spa',
      code: c.code,
      code_verifier: c.checks.pkceCodeVerifier,
      redirect_uri: 'http://127.0.0.1/other',
    });
    assert.deepEqual([elsewhere.status, elsewhere.body.error], [400, 'invalid_grant']);
    const none = await token({ client_id: 'spa', code: 'made-up', code_verifier: c.checks.pkceCodeVerifier });
    assert.deepEqual([none.status, none.body.error], [400, 'invalid_grant']);
    const noVerifier = await token({ client_id: 'spa', code: 'x' });
    assert.deepEqual([noVerifier.status, noVerifier.body.error], [400, 'invalid_request']);
    // The confidential client without its secret is not a public client.
    const bare = await token({ client_id: 'portal', code: 'x', code_verifier: c.checks.pkceCodeVerifier });
    assert.deepEqual([bare.status, bare.body.error], [401, 'invalid_client']);
  });

  test('a callback whose iss is not the issuer is refused by openid-client (RFC 9207 mix-up defence)', async () => {
    const browser = new Browser(t);
    const { url, checks } = await authorizationUrl(spa);
    const back = await browser.signIn(url, 'alice', PASSWORD);
    const location = new URL(back.headers.get('location') as string);
    location.searchParams.set('iss', 'https://127.0.0.1:1/not-the-issuer');
    await assert.rejects(
      oidc.authorizationCodeGrant(spa, location, checks),
      (e: Error & { code?: string; cause?: Error }) =>
        e.code === 'OAUTH_INVALID_RESPONSE' && /"iss" \(issuer\) response parameter/.test(String(e.cause?.message)),
    );
    // The genuine callback still works: nothing was spent on the forged one.
    location.searchParams.set('iss', t.issuer);
    assert.equal((await oidc.authorizationCodeGrant(spa, location, checks)).claims()?.sub, alice.sub);
  });

  test('/authorize refusals: unknown client or unregistered redirect_uri → a page, nowhere to go; others → back with error, state and iss', async () => {
    const browser = new Browser(t);
    const base = {
      client_id: 'spa',
      redirect_uri: APP,
      response_type: 'code',
      state: 'st-1',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    };
    const go = (params: Record<string, string>, extra = '') =>
      browser.fetch(`${t.issuer}/authorize?${new URLSearchParams(params)}${extra}`);
    for (const params of [
      { ...base, client_id: 'nobody' },
      { ...base, redirect_uri: 'http://127.0.0.1/callback/extra' },
      { ...base, redirect_uri: 'HTTP://127.0.0.1/callback' },
    ]) {
      const res = await go(params);
      assert.equal(res.status, 400, JSON.stringify(params));
      assert.equal(res.headers.get('location'), null);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    }
    const cases: [Record<string, string>, string, string][] = [
      [{ ...base, code_challenge: '' }, 'invalid_request', 'no PKCE'],
      [{ ...base, code_challenge_method: 'plain' }, 'invalid_request', 'plain PKCE'],
      [{ ...base, response_type: 'token' }, 'unsupported_response_type', 'implicit'],
      [{ ...base, scope: 'openid admin' }, 'invalid_scope', 'a scope the client was not given'],
      [{ ...base, request: 'x.y.z' }, 'request_not_supported', 'a request object'],
    ];
    for (const [params, error, why] of cases) {
      const res = await go(params);
      assert.equal(res.status, 303, why);
      const to = new URL(res.headers.get('location') as string);
      assert.equal(`${to.origin}${to.pathname}`, APP, why);
      assert.equal(to.searchParams.get('error'), error, why);
      assert.equal(to.searchParams.get('state'), 'st-1', why);
      assert.equal(to.searchParams.get('iss'), t.issuer, why);
    }
    const repeated = await go(base, '&state=again');
    assert.equal(new URL(repeated.headers.get('location') as string).searchParams.get('error'), 'invalid_request');
  });

  test('the sign-in form: only with its browser’s cookie (CSRF), a generic message for a wrong password, then the lockout', async () => {
    const { url } = await authorizationUrl(spa);
    const browser = new Browser(t);
    const page = await (await browser.fetch(String(url))).text();
    const stranger = new Browser(t);
    const forged = await stranger.submit(page, '/authorize/login', { username: 'alice', password: PASSWORD });
    assert.equal(forged.status, 403, 'another browser cannot post this form');
    const wrong = await browser.submit(page, '/authorize/login', { username: 'alice', password: 'not it at all' });
    assert.equal(wrong.status, 401);
    const wrongPage = await wrong.text();
    assert.match(wrongPage, /role="alert"[^>]*>The username or password is wrong\./);
    const unknown = await browser.submit(page, '/authorize/login', { username: 'nobody', password: 'not it at all' });
    assert.match(await unknown.text(), /The username or password is wrong\./, 'the same words for a name no one has');
    // Bob guesses from one address: five failures, then he waits — and the right password waits too.
    await t.admin('/admin/users', { username: 'bob', password: PASSWORD });
    for (let i = 0; i < 5; i++)
      assert.equal(
        (await browser.submit(page, '/authorize/login', { username: 'bob', password: `guess ${i}` })).status,
        401,
      );
    const locked = await browser.submit(page, '/authorize/login', { username: 'bob', password: PASSWORD });
    assert.equal(locked.status, 429);
    assert.equal(locked.headers.get('retry-after'), '1');
    assert.match(await locked.text(), /Too many attempts/);
    const reasons = (await auditEvents(t.idp.storage, { type: 'user.login_failed' })).map((e) => e.reason);
    assert.deepEqual(reasons.slice(-8), [
      'bad_password',
      'unknown_user',
      'bad_password',
      'bad_password',
      'bad_password',
      'bad_password',
      'bad_password',
      'locked',
    ]);
    // A name no user has is recorded as a keyed hash (it may be a password typed into the wrong
    // field): the same for the same name, so detectors still count distinct names.
    const unknownName = async () =>
      (await auditEvents(t.idp.storage, { type: 'user.login_failed' }))
        .filter((e) => e.reason === 'unknown_user')
        .at(-1)?.detail?.username as string;
    const hashed = await unknownName();
    assert.match(hashed, /^\?[A-Za-z0-9_-]{22}$/);
    const again = await browser.submit(page, '/authorize/login', { username: 'NOBODY', password: 'not it at all' });
    assert.equal(again.status, 401);
    assert.equal(await unknownName(), hashed, 'one name, one value (compared as usernames are)');
    const everything = JSON.stringify(await auditEvents(t.idp.storage, { limit: 10_000 }));
    assert.equal(everything.includes('nobody'), false, 'no name that no user has');
    assert.equal(everything.includes(PASSWORD), false, 'no password in any event');
    assert.equal(everything.includes('not it at all'), false, 'nor a wrong one');
  });

  test('a password the administrator generated must be changed at the first sign-in, to one the policy accepts', async () => {
    const carol = (await (
      await t.admin('/admin/users', { username: 'carol', generate_password: true })
    ).json()) as Record<string, string>;
    const browser = new Browser(t);
    const { url, checks } = await authorizationUrl(spa);
    const asked = await browser.signIn(url, 'carol', carol.password as string);
    assert.equal(asked.status, 200);
    const form = await asked.text();
    assert.match(form, /Choose a new password/);
    const weak = await browser.submit(form, '/authorize/password', {
      new_password: 'qwerty123456',
      confirm_password: 'qwerty123456',
    });
    assert.equal(weak.status, 400);
    assert.match(await weak.text(), /exposed in breaches/);
    const mismatch = await browser.submit(form, '/authorize/password', {
      new_password: 'my own long passphrase',
      confirm_password: 'my own long passphrase!',
    });
    assert.equal(mismatch.status, 400);
    const done = await browser.submit(form, '/authorize/password', {
      new_password: 'my own long passphrase',
      confirm_password: 'my own long passphrase',
    });
    assert.equal(done.status, 303);
    const tokens = await oidc.authorizationCodeGrant(spa, new URL(done.headers.get('location') as string), checks);
    assert.equal(tokens.claims()?.sub, carol.sub);
    const shown = (await (await t.admin('/admin/users/carol', undefined, 'GET')).json()) as Record<string, unknown>;
    assert.equal(shown.must_change_password, false);
    const again = await new Browser(t).signIn((await authorizationUrl(spa)).url, 'carol', 'my own long passphrase');
    assert.equal(again.status, 303, 'the new password signs in');
  });

  test('pushed authorization requests (RFC 9126) through openid-client, requirable per client; a request_uri works once', async () => {
    const reg = await t.register({
      client_id: 'pushy',
      grant_types: ['authorization_code'],
      redirect_uris: [APP],
      audiences: ['https://orders.internal'],
      require_pushed_authorization_requests: true,
    });
    const config = await oidc.discovery(
      new URL(t.issuer),
      'pushy',
      undefined,
      oidc.ClientSecretBasic(reg.client_secret),
      {
        [oidc.customFetch]: t.fetch as oidc.CustomFetch,
      },
    );
    config[oidc.customFetch] = t.fetch as oidc.CustomFetch;
    assert.equal(config.serverMetadata().pushed_authorization_request_endpoint, `${t.issuer}/par`);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const params = {
      redirect_uri: APP,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    };
    const url = await oidc.buildAuthorizationUrlWithPAR(config, params);
    assert.match(url.searchParams.get('request_uri') ?? '', /^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{43}$/);
    assert.equal(url.searchParams.get('code_challenge'), null, 'the request itself stays at the IdP');
    const browser = new Browser(t);
    const back = await browser.signIn(url, 'alice', PASSWORD);
    assert.equal(back.status, 303);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(back.headers.get('location') as string), {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    assert.equal(tokens.claims()?.sub, alice.sub);
    const again = await browser.fetch(String(url));
    assert.equal(again.status, 400, 'a request_uri works once');
    const otherClient = new URL(url);
    const pushed = await oidc.buildAuthorizationUrlWithPAR(config, params);
    otherClient.searchParams.set('request_uri', pushed.searchParams.get('request_uri') as string);
    otherClient.searchParams.set('client_id', 'spa');
    assert.equal((await browser.fetch(String(otherClient))).status, 400, 'only for the client that pushed it');
    // Required for this client: a plain authorization request goes back with an error.
    const plain = oidc.buildAuthorizationUrl(config, params);
    const refused = await browser.fetch(String(plain));
    assert.equal(refused.status, 303);
    assert.equal(new URL(refused.headers.get('location') as string).searchParams.get('error'), 'invalid_request');
    // The push is checked like /authorize, and answered in JSON (RFC 9126 §2.3).
    const bad = await t.post(
      '/par',
      {
        response_type: 'code',
        redirect_uri: 'https://127.0.0.1/not-registered',
        code_challenge: params.code_challenge,
        code_challenge_method: 'S256',
      },
      { authorization: `Basic ${Buffer.from(`pushy:${reg.client_secret}`).toString('base64')}` },
    );
    assert.deepEqual([bad.status, bad.body.error], [400, 'invalid_request']);
    const anonymous = await t.post('/par', { response_type: 'code', client_id: 'pushy' });
    assert.equal(anonymous.status, 401, 'a confidential client authenticates its push');
  });

  test('single sign-on: the same browser is answered without a password; prompt=login asks again; prompt=none without a session → login_required', async () => {
    const browser = new Browser(t);
    const first = await authorizationUrl(spa);
    const back = await browser.signIn(first.url, 'alice', PASSWORD);
    const tokens = await oidc.authorizationCodeGrant(
      spa,
      new URL(back.headers.get('location') as string),
      first.checks,
    );
    const sid = tokens.claims()?.sid;
    assert.match(String(sid), /^[0-9a-f-]{36}$/, 'the ID token names the session');
    const second = await authorizationUrl(spa);
    const sso = await browser.fetch(String(second.url));
    assert.equal(sso.status, 303, 'no page: the session answers');
    const again = await oidc.authorizationCodeGrant(spa, new URL(sso.headers.get('location') as string), second.checks);
    assert.equal(again.claims()?.sid, sid);
    assert.equal(again.claims()?.auth_time, tokens.claims()?.auth_time, 'auth_time is the sign-in’s, not now');
    const login = (await auditEvents(t.idp.storage, { type: 'user.login' })).at(-1);
    assert.equal(login?.detail?.method, 'session');
    const forced = await browser.fetch(String((await authorizationUrl(spa, { prompt: 'login' })).url));
    assert.equal(forced.status, 200, 'prompt=login shows the page');
    const silent = await new Browser(t).fetch(String((await authorizationUrl(spa, { prompt: 'none' })).url));
    assert.equal(silent.status, 303);
    assert.equal(new URL(silent.headers.get('location') as string).searchParams.get('error'), 'login_required');
  });

  test('RP-initiated logout through openid-client: the session ends with its refresh and access tokens, back to the registered URI with state', async () => {
    const BYE = 'http://127.0.0.1/signed-out';
    await t.register({
      client_id: 'relying-party',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [APP],
      post_logout_redirect_uris: [BYE],
      audiences: ['https://orders.internal'],
    });
    const rp = await oidc.discovery(new URL(t.issuer), 'relying-party', undefined, oidc.None(), {
      [oidc.customFetch]: t.fetch as oidc.CustomFetch,
    });
    rp[oidc.customFetch] = t.fetch as oidc.CustomFetch;
    assert.equal(rp.serverMetadata().end_session_endpoint, `${t.issuer}/end_session`);
    const browser = new Browser(t);
    const { url, checks } = await authorizationUrl(rp);
    const back = await browser.signIn(url, 'alice', PASSWORD);
    const tokens = await oidc.authorizationCodeGrant(rp, new URL(back.headers.get('location') as string), checks);
    assert.ok(tokens.refresh_token);
    const elsewhere = oidc.buildEndSessionUrl(rp, {
      id_token_hint: tokens.id_token as string,
      post_logout_redirect_uri: 'http://127.0.0.1/not-registered',
    });
    assert.equal((await browser.fetch(String(elsewhere))).status, 400, 'only a registered address');
    const noHint = await new Browser(t).fetch(`${t.issuer}/end_session`);
    assert.equal(noHint.status, 200);
    assert.match(await noHint.text(), /Sign out\?/, 'without a hint the person confirms');

    const end = oidc.buildEndSessionUrl(rp, {
      id_token_hint: tokens.id_token as string,
      post_logout_redirect_uri: BYE,
      state: 'bye-1',
    });
    const out = await browser.fetch(String(end));
    assert.equal(out.status, 303);
    assert.equal(out.headers.get('location'), `${BYE}?state=bye-1`);
    const refreshed = await t.post('/token', {
      grant_type: 'refresh_token',
      client_id: 'relying-party',
      refresh_token: tokens.refresh_token as string,
    });
    assert.deepEqual([refreshed.status, refreshed.body.error], [400, 'invalid_grant']);
    await assert.rejects(
      oidc.fetchUserInfo(rp, tokens.access_token, alice.sub),
      (e: oidc.WWWAuthenticateChallengeError) => e.status === 401,
      'the access token is revoked too',
    );
    const next = await browser.fetch(String((await authorizationUrl(rp)).url));
    assert.equal(next.status, 200, 'no more single sign-on: the page again');
    const logout = (await auditEvents(t.idp.storage, { type: 'user.logout' })).at(-1);
    assert.deepEqual([logout?.subject, logout?.client_id, logout?.detail?.families], [alice.sub, 'relying-party', 1]);
  });

  test('a disabled user cannot sign in, with the same words as a wrong password', async () => {
    await t.admin('/admin/users', { username: 'dave', password: PASSWORD });
    await t.admin('/admin/users/dave/disable', {});
    const res = await new Browser(t).signIn((await authorizationUrl(spa)).url, 'dave', PASSWORD);
    assert.equal(res.status, 401);
    assert.match(await res.text(), /The username or password is wrong\./);
    const last = (await auditEvents(t.idp.storage, { type: 'user.login_failed' })).at(-1);
    assert.equal(last?.reason, 'user_disabled');
  });
});
