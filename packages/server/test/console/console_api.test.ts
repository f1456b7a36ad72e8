// Issue 19: the admin console's server side — its sign-in (admin token, one-time links), the
// session cookie and CSRF token standing for the admin bearer on the same admin API, alert
// acknowledgement, the audit trail's live stream and the dashboard's statistics.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { auditEvents, basicAuth, FakeClock, startTestIdp, type TestIdp, userTokens } from '@latchkey/testkit';

/** A signed-in console: its cookie and CSRF token, and a fetch that sends them as the page does. */
async function signIn(t: TestIdp, body: Record<string, string>) {
  const res = await t.fetch(`${t.issuer}/console/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const setCookie = res.headers.getSetCookie();
  const cookie = setCookie[0]?.split(';')[0] ?? '';
  const json = res.status === 200 ? (JSON.parse(text) as { csrf: string; expires_at: number }) : undefined;
  const call = (path: string, init: RequestInit & { csrf?: string | null } = {}) => {
    const headers = new Headers(init.headers);
    headers.set('cookie', cookie);
    const csrf = init.csrf === undefined ? json?.csrf : init.csrf;
    if (csrf) headers.set('x-csrf-token', csrf);
    return t.fetch(`${t.issuer}${path}`, { ...init, headers });
  };
  return { status: res.status, text, setCookie, cookie, csrf: json?.csrf ?? '', expiresAt: json?.expires_at, call };
}

describe('console sign-in and the session as an admin credential', () => {
  let t: TestIdp;
  before(async () => {
    t = await startTestIdp();
  });
  after(async () => t?.close());

  test('the admin token signs in: a __Host- cookie (HttpOnly, Secure, SameSite=Strict), its CSRF token, audited', async () => {
    const s = await signIn(t, { admin_token: t.adminToken });
    assert.equal(s.status, 200, s.text);
    assert.equal(s.setCookie.length, 1);
    assert.match(
      s.setCookie[0]!,
      /^__Host-lk-console=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=28800; Secure$/,
    );
    assert.match(s.csrf, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(!s.text.includes(s.cookie.split('=')[1]!), 'the cookie value is not in the body');
    const events = await auditEvents(t.idp.storage, { type: 'console.signed_in' });
    assert.equal(events[0]?.detail?.method, 'admin_token');
    assert.ok(!JSON.stringify(events).includes(t.adminToken), 'no token in the audit trail');

    // The session reaches the admin API with the CSRF token, on reads and changes alike.
    const clients = await s.call('/admin/clients');
    assert.equal(clients.status, 200);
    const rotate = await s.call('/admin/keys/rotate', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(rotate.status, 200, await rotate.text());
    // GET /console/session gives a reloaded page the same CSRF token.
    const again = await s.call('/console/session', { csrf: null });
    assert.deepEqual(await again.json(), { csrf: s.csrf, expires_at: s.expiresAt });
  });

  test('without its CSRF token, or with another session’s, the cookie is refused (403 csrf_failed) on every method', async () => {
    const a = await signIn(t, { admin_token: t.adminToken });
    const b = await signIn(t, { admin_token: t.adminToken });
    for (const csrf of [null, b.csrf, 'x'.repeat(43), '']) {
      const get = await a.call('/admin/clients', { csrf });
      assert.equal(get.status, 403);
      assert.deepEqual(await get.json(), {
        error: 'csrf_failed',
        error_description: 'the console session needs its CSRF token in x-csrf-token',
      });
      const post = await a.call('/admin/keys/rotate', { method: 'POST', csrf });
      assert.equal(post.status, 403);
    }
    // A made-up cookie is no session: 401 as for a wrong bearer.
    const res = await t.fetch(`${t.issuer}/admin/clients`, {
      headers: { cookie: '__Host-lk-console=forged', 'x-csrf-token': a.csrf },
    });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  test('a wrong admin token is refused (401) and audited as admin.auth_failed; the body is checked strictly', async () => {
    const s = await signIn(t, { admin_token: 'not-the-token' });
    assert.equal(s.status, 401);
    assert.deepEqual(JSON.parse(s.text), { error: 'invalid_token', error_description: 'the admin token is not valid' });
    assert.equal(s.setCookie.length, 0);
    const failed = await auditEvents(t.idp.storage, { type: 'admin.auth_failed' });
    assert.equal(failed.at(-1)?.reason, 'invalid_token');
    for (const [body, type, status] of [
      ['{"admin_token": "a", "code": "b"}', 'application/json', 400],
      ['{"password": "a"}', 'application/json', 400],
      ['not json', 'application/json', 400],
      ['admin_token=a', 'application/x-www-form-urlencoded', 415],
    ] as const) {
      const res = await t.fetch(`${t.issuer}/console/session`, {
        method: 'POST',
        headers: { 'content-type': type },
        body,
      });
      assert.equal(res.status, status, body);
      assert.ok(['validation_failed', 'unsupported_media_type'].includes(((await res.json()) as any).error));
    }
  });

  test('signing out needs the CSRF token, ends the session on the server and clears the cookie', async () => {
    const s = await signIn(t, { admin_token: t.adminToken });
    const refused = await s.call('/console/session', { method: 'DELETE', csrf: null });
    assert.equal(refused.status, 403);
    assert.equal((await s.call('/admin/clients')).status, 200, 'still signed in');
    const out = await s.call('/console/session', { method: 'DELETE' });
    assert.equal(out.status, 204);
    assert.match(
      out.headers.getSetCookie()[0]!,
      /^__Host-lk-console=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0; Secure$/,
    );
    // The old cookie is dead even if a browser kept it.
    assert.equal((await s.call('/admin/clients')).status, 401);
    assert.equal((await s.call('/console/session', { csrf: null })).status, 401);
    assert.equal((await s.call('/console/session', { method: 'DELETE' })).status, 401, 'signed out already');
    const events = await auditEvents(t.idp.storage, { type: 'console.signed_out' });
    assert.equal(events.length, 1);
  });

  test('a one-time link: made with the admin bearer, its code in the fragment, usable once', async () => {
    const made = await t.admin('/admin/console/links', undefined);
    assert.equal(made.status, 200);
    const link = (await made.json()) as { url: string; expires_at: number; expires_in: number };
    assert.equal(link.expires_in, 600);
    const url = new URL(link.url);
    assert.equal(`${url.origin}${url.pathname}`, `${t.issuer}/console/`);
    assert.equal(url.search, '', 'the code is not in the query, which reaches servers and logs');
    const code = /^#\/sign-in\?code=(.+)$/.exec(url.hash)?.[1];
    assert.ok(code);
    const first = await signIn(t, { code });
    assert.equal(first.status, 200, first.text);
    assert.equal((await first.call('/admin/clients')).status, 200);
    const second = await signIn(t, { code });
    assert.equal(second.status, 401, 'a used link');
    assert.equal(JSON.parse(second.text).error_description, 'the sign-in link is not valid, expired or used');
    // Tampered codes: another expiry, another nonce, another MAC.
    const [exp, nonce, mac] = code.split('.') as [string, string, string];
    for (const forged of [
      `${Number(exp) + 1000}.${nonce}.${mac}`,
      `${exp}.${'A'.repeat(22)}.${mac}`,
      `${exp}.${nonce}.${'A'.repeat(43)}`,
      'garbage',
    ])
      assert.equal((await signIn(t, { code: forged })).status, 401, forged);
    const events = await auditEvents(t.idp.storage, { type: 'console.signed_in' });
    assert.equal(events.at(-1)?.detail?.method, 'sign_in_link');
    assert.ok(!JSON.stringify(await auditEvents(t.idp.storage)).includes(nonce), 'the code is not audited');
    // Only the admin may make links.
    const anonymous = await t.fetch(`${t.issuer}/admin/console/links`, { method: 'POST' });
    assert.equal(anonymous.status, 401);
  });

  test('the page and its assets: strict CSP, no framing, hashed assets cached, unknown files 404', async () => {
    const page = await t.fetch(`${t.issuer}/console/`);
    const headers = page.headers;
    const body = await page.text();
    // Built by `npm run build` (npm ci runs it); the page without a build is tested below.
    assert.equal(page.status, 200, body);
    assert.equal(
      headers.get('content-security-policy'),
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    assert.equal(headers.get('x-frame-options'), 'DENY');
    const js = /src="assets\/([^"]+\.js)"/.exec(body)?.[1];
    assert.ok(js);
    const asset = await t.fetch(`${t.issuer}/console/assets/${js}`);
    assert.equal(asset.status, 200);
    assert.equal(asset.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.match(asset.headers.get('cache-control') ?? '', /immutable/);
    const redirect = await t.fetch(`${t.issuer}/console`, { redirect: 'manual' });
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.get('location'), '/console/');
    for (const path of [
      '/console/assets/nope.js',
      '/console/assets/..%2F..%2Fpackage.json',
      '/console/assets/index.html',
    ])
      assert.equal((await t.fetch(`${t.issuer}${path}`)).status, 404, path);
  });
});

describe('users with the latchkey-admin role sign in through the IdP, as the console client', () => {
  let t: TestIdp;
  const PASSWORD = 'a long and winding passphrase';
  before(async () => {
    t = await startTestIdp();
    for (const [username, roles] of [
      ['root', ['latchkey-admin']],
      ['pat', ['reader']],
    ] as const) {
      const made = await t.admin('/admin/users', { username, password: PASSWORD });
      const sub = ((await made.json()) as { sub: string }).sub;
      assert.equal((await t.admin(`/admin/users/${sub}/roles`, { roles }, 'PUT')).status, 200);
    }
  });
  after(async () => t?.close());

  const tokenOf = async (username: string) => {
    const meta = (await (await t.fetch(`${t.issuer}/console/sign-in`)).json()) as any;
    return (
      await userTokens(t, {
        clientId: meta.client_id,
        redirectUri: meta.redirect_uri,
        username,
        password: PASSWORD,
        scope: meta.scope,
        resource: [meta.resource],
      })
    ).access_token;
  };

  test('GET /console/sign-in registers the console client once and names it; a role holder signs in; actions are audited as admin:<username>', async () => {
    const meta = (await (await t.fetch(`${t.issuer}/console/sign-in`)).json()) as any;
    assert.deepEqual(meta, {
      client_id: 'latchkey-console',
      redirect_uri: `${t.issuer}/console/`,
      resource: t.issuer,
      scope: 'openid',
      authorization_endpoint: `${t.issuer}/authorize`,
      token_endpoint: `${t.issuer}/token`,
      role: 'latchkey-admin',
    });
    const again = await t.fetch(`${t.issuer}/console/sign-in`);
    assert.equal(again.status, 200);
    const clients = (await (await t.admin('/admin/clients', undefined, 'GET')).json()) as { clients: any[] };
    assert.equal(clients.clients.filter((c) => c.client_id === 'latchkey-console').length, 1);
    const s = await signIn(t, { access_token: await tokenOf('root') });
    assert.equal(s.status, 200, s.text);
    const rotate = await s.call('/admin/keys/rotate', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(rotate.status, 200);
    const requested = await auditEvents(t.idp.storage, { type: 'key.rotation_requested' });
    assert.equal(requested.at(-1)?.actor, 'admin:root');
    const signedIn = await auditEvents(t.idp.storage, { type: 'console.signed_in' });
    assert.equal(signedIn.at(-1)?.actor, 'admin:root');
    assert.equal(signedIn.at(-1)?.detail?.method, 'user');
    // The role taken away: the session stops working at the next request; given back, it works.
    const users = (await (await t.admin('/admin/users?limit=10', undefined, 'GET')).json()) as { users: any[] };
    const root = users.users.find((u) => u.username === 'root');
    assert.equal((await t.admin(`/admin/users/${root.sub}/roles`, { roles: [] }, 'PUT')).status, 200);
    const refused = await s.call('/admin/clients');
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as any).error_description, 'the user can no longer use the console');
    assert.equal((await t.admin(`/admin/users/${root.sub}/roles`, { roles: ['latchkey-admin'] }, 'PUT')).status, 200);
    assert.equal((await s.call('/admin/clients')).status, 200);
  });

  test('refused: a user without the role, a token of another client or audience, a disabled user, a forged token', async () => {
    const pat = await signIn(t, { access_token: await tokenOf('pat') });
    assert.equal(pat.status, 401);
    assert.equal(JSON.parse(pat.text).error_description, 'the user needs the latchkey-admin role to use the console');
    const failed = await auditEvents(t.idp.storage, { type: 'admin.auth_failed' });
    assert.deepEqual([failed.at(-1)?.actor, failed.at(-1)?.reason], ['pat', 'not_a_console_admin']);
    // A service's token, audienced to the IdP or not, is not a user's.
    const svc = await t.register({ client_id: 'svc', grant_types: ['client_credentials'], audiences: [t.issuer] });
    const svcToken = (
      await t.post(
        '/token',
        { grant_type: 'client_credentials', resource: t.issuer },
        { authorization: basicAuth('svc', svc.client_secret) },
      )
    ).body.access_token as string;
    assert.ok(svcToken, 'a service token for the IdP');
    for (const token of [svcToken, 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.', 'garbage'])
      assert.equal((await signIn(t, { access_token: token })).status, 401);
    // Disabled after signing in at the IdP: refused.
    const rootToken = await tokenOf('root');
    const users = (await (await t.admin('/admin/users?limit=10', undefined, 'GET')).json()) as { users: any[] };
    const root = users.users.find((u) => u.username === 'root');
    assert.equal((await t.admin(`/admin/users/${root.sub}/disable`, undefined)).status, 200);
    assert.equal((await signIn(t, { access_token: rootToken })).status, 401);
  });
});

describe('a one-time link expires; the console not built answers 503', () => {
  test('an expired link is refused', async () => {
    const clock = new FakeClock();
    const t = await startTestIdp({ clock });
    try {
      const link = (await (await t.admin('/admin/console/links', undefined)).json()) as { url: string };
      const code = link.url.split('code=')[1]!;
      clock.advance(601_000);
      assert.equal((await signIn(t, { code })).status, 401);
    } finally {
      await t.close();
    }
  });
});

describe('alerts: acknowledged once, listed by state', () => {
  let t: TestIdp;
  before(async () => {
    t = await startTestIdp();
    await t.register({ client_id: 'orders', grant_types: ['client_credentials'] });
    for (let i = 0; i < 12; i++)
      await t.post(
        '/token',
        { grant_type: 'client_credentials' },
        { authorization: basicAuth('orders', `guess-${i}`) },
      );
  });
  after(async () => t?.close());

  test('acknowledge: 200 with who and when, audited; again 409; unknown 404; open and acknowledged filters', async () => {
    let alert: any;
    for (let i = 0; i < 50 && !alert; i++) {
      await new Promise((r) => setTimeout(r, 100));
      alert = ((await (await t.admin('/admin/alerts?state=open', undefined, 'GET')).json()) as any).alerts[0];
    }
    assert.ok(alert, 'the burst raised an alert');
    assert.equal(alert.acknowledgedAt, null);
    const ack = await t.admin(`/admin/alerts/${alert.id}/acknowledge`, undefined);
    assert.equal(ack.status, 200);
    const body = (await ack.json()) as any;
    assert.equal(body.id, alert.id);
    assert.equal(body.acknowledgedBy, 'admin');
    assert.match(body.acknowledgedAt, /^\d{4}-\d\d-\d\dT/);
    const again = await t.admin(`/admin/alerts/${alert.id}/acknowledge`, undefined);
    assert.equal(again.status, 409);
    assert.equal(((await again.json()) as any).error, 'conflict');
    assert.equal((await t.admin('/admin/alerts/999999/acknowledge', undefined)).status, 404);
    assert.equal((await t.admin('/admin/alerts/x/acknowledge', undefined)).status, 400);
    const open = (await (await t.admin('/admin/alerts?state=open', undefined, 'GET')).json()) as any;
    assert.ok(!open.alerts.some((a: any) => a.id === alert.id));
    const done = (await (await t.admin('/admin/alerts?state=acknowledged', undefined, 'GET')).json()) as any;
    assert.deepEqual(
      done.alerts.map((a: any) => a.id),
      [alert.id],
    );
    const events = await auditEvents(t.idp.storage, { type: 'alert.acknowledged' });
    assert.deepEqual(events[0]?.detail, { alert_id: alert.id, detector: alert.detector });
  });
});

describe('the audit stream and the dashboard statistics', () => {
  let t: TestIdp;
  let secret = '';
  before(async () => {
    t = await startTestIdp();
    secret = (
      await t.register({
        client_id: 'gateway',
        grant_types: ['client_credentials'],
        audiences: ['https://orders.test'],
        default_audience: 'https://orders.test',
      })
    ).client_secret;
    await t.register({ client_id: 'billing', grant_types: ['client_credentials'] });
  });
  after(async () => t?.close());

  test('GET /admin/audit/stream: events as they are written, filtered, resumable with Last-Event-ID', async () => {
    const stop = new AbortController();
    const res = await t.fetch(`${t.issuer}/admin/audit/stream?type=token.issued`, {
      headers: { authorization: `Bearer ${t.adminToken}` },
      signal: stop.signal,
    });
    assert.equal(res.status, 200, res.status === 200 ? '' : `${await res.text()}`);
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const issued: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await t.post(
        '/token',
        { grant_type: 'client_credentials' },
        { authorization: basicAuth('gateway', secret) },
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    // Another type in between is not sent.
    await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth('gateway', 'wrong') });
    const deadline = Date.now() + 5000;
    while (issued.length < 3 && Date.now() < deadline) {
      const { value } = await reader.read();
      text += value;
      issued.length = 0;
      for (const m of text.matchAll(/event: audit\nid: (\d+)\ndata: (.+)\n\n/g)) {
        const e = JSON.parse(m[2]!);
        assert.equal(e.type, 'token.issued');
        assert.equal(e.seq, Number(m[1]));
        issued.push(e.seq);
      }
    }
    stop.abort();
    assert.equal(issued.length, 3);
    // Resume after the first: the other two come again.
    const stop2 = new AbortController();
    const resumed = await t.fetch(`${t.issuer}/admin/audit/stream?type=token.issued`, {
      headers: { authorization: `Bearer ${t.adminToken}`, 'last-event-id': String(issued[0]) },
      signal: stop2.signal,
    });
    const r2 = resumed.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text2 = '';
    while ((text2.match(/event: audit/g) ?? []).length < 2) text2 += (await r2.read()).value;
    stop2.abort();
    assert.deepEqual(
      [...text2.matchAll(/id: (\d+)/g)].map((m) => Number(m[1])),
      issued.slice(1),
    );
    assert.equal((await t.fetch(`${t.issuer}/admin/audit/stream`)).status, 401);
  });

  test('GET /admin/stats: tokens by client, failed authentications, denials by service and action', async () => {
    const before = new Date(Date.now() - 1000).toISOString();
    const to = new Date(Date.now() + 2000).toISOString();
    const read = async () => {
      const res = await t.admin(`/admin/stats?from=${before}&to=${to}&step=1s`, undefined, 'GET');
      assert.equal(res.status, 200);
      return (await res.json()) as any;
    };
    const total = (list: any[], name: string) =>
      list.find((s) => s.name === name)?.counts.reduce((a: number, b: number) => a + b, 0) ?? 0;
    const base = await read();
    for (let i = 0; i < 4; i++)
      await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth('gateway', secret) });
    for (let i = 0; i < 2; i++)
      await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth('billing', 'wrong') });
    // Denied decisions as a service reports them: one by one and a counted row.
    const report = await t.fetch(`${t.issuer}/audit/events`, {
      method: 'POST',
      headers: { authorization: basicAuth('gateway', secret), 'content-type': 'application/json' },
      body: JSON.stringify({
        events: [
          { type: 'authz.decision', outcome: 'failure', actor: 'User::"ann"', detail: { action: 'Action::"cancel"' } },
          { type: 'authz.decision', outcome: 'failure', actor: 'User::"ann"', detail: { action: 'Action::"cancel"' } },
          {
            type: 'authz.decisions',
            outcome: 'failure',
            actor: 'User::"bob"',
            detail: {
              count: 5,
              from: before,
              to: new Date().toISOString(),
              action: 'Action::"read"',
              resource_type: 'Order',
              policies: [],
              policy_version: null,
              why: 'rate',
            },
          },
        ],
      }),
    });
    assert.equal(report.status, 202, await report.text());
    const stats = await read();
    assert.equal(stats.buckets.length, stats.tokens_issued[0].counts.length);
    assert.equal(total(stats.tokens_issued, 'gateway') - total(base.tokens_issued, 'gateway'), 4);
    assert.equal(
      total(stats.failed_authentications, 'client.auth_failed') -
        total(base.failed_authentications, 'client.auth_failed'),
      2,
    );
    assert.equal(total(stats.denied_decisions, 'gateway'), 7);
    assert.equal(total(stats.denied_by_action, 'gateway Action::"cancel"'), 2);
    assert.equal(total(stats.denied_by_action, 'gateway Action::"read"'), 5);
    assert.equal(stats.truncated, false);
    assert.ok(stats.feed.length >= 1, 'the feed history has its first sample');
    // A range before everything: empty series, not an error.
    const empty = (await (
      await t.admin('/admin/stats?from=2020-01-01T00:00:00Z&to=2020-01-01T01:00:00Z', undefined, 'GET')
    ).json()) as any;
    assert.deepEqual(empty.tokens_issued, []);
    assert.equal(empty.buckets.length, 61);
    // Bad ranges are 400s.
    for (const q of [
      'from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z',
      'from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&step=1s',
      'step=2m',
      'from=yesterday',
    ])
      assert.equal((await t.admin(`/admin/stats?${q}`, undefined, 'GET')).status, 400, q);
  });
});

describe('the console without its build', () => {
  test('GET /console/ says how to build it (503), the API is untouched', async () => {
    const { registerConsole } = await import('../../src/console/console_routes.ts');
    const dir = mkdtempSync(join(tmpdir(), 'console-empty-'));
    writeFileSync(join(dir, 'README'), 'no build here');
    const Fastify = (await import('fastify')).default;
    const { addSharedSchemas } = await import('../../src/http/schemas.ts');
    const app = Fastify();
    addSharedSchemas(app);
    registerConsole(app, {
      sessions: {} as never,
      events: {} as never,
      checkAdminToken: async () => false,
      cookieName: 'lk-console',
      secure: false,
      dist: dir,
    });
    const res = await app.inject('/console/');
    assert.equal(res.statusCode, 503);
    assert.match(res.body, /npm run build/);
    await app.close();
  });
});
