import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Browser, startTestIdp, type TestIdp } from '@latchkey/testkit';

const APP = 'http://127.0.0.1/callback';
const PASSWORD = 'willow, brook and stone';

/** An IdP behind a trusted proxy on loopback, so each sign-in can come from its own (loopback) address. */
async function estate(config: Record<string, unknown>, users: string[]) {
  const t = await startTestIdp({ config: { trustedProxies: ['127.0.0.1'], ...config } });
  await t.register({
    client_id: 'app',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    redirect_uris: [APP],
    audiences: ['https://orders.internal'],
  });
  const subs: Record<string, string> = {};
  for (const u of users)
    subs[u] = (
      (await (await t.admin('/admin/users', { username: u, password: PASSWORD })).json()) as { sub: string }
    ).sub;
  return { t, subs };
}

/** One sign-in from `ip` (in `browser`, or a new one); true when it succeeded. */
async function signIn(t: TestIdp, username: string, password: string, ip: string, browser?: Browser): Promise<boolean> {
  const b = browser ?? new Browser(t, { 'x-forwarded-for': ip });
  const url = new URL(`${t.issuer}/authorize`);
  const verifier = randomBytes(32).toString('base64url');
  for (const [k, v] of Object.entries({
    client_id: 'app',
    redirect_uri: APP,
    response_type: 'code',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    // Each attempt a password sign-in, even in a browser with a session.
    prompt: 'login',
  }))
    url.searchParams.set(k, v);
  const res = await b.signIn(url, username, password);
  await res.arrayBuffer();
  return res.status === 303;
}

async function alerts(t: TestIdp, detector: string, expectSome: boolean) {
  let found: { detector: string; key: string; summary: string }[] = [];
  // Detection runs as events commit; give it a moment when an alert is expected.
  for (let i = 0; i < (expectSome ? 60 : 10); i++) {
    await t.idp.audit.flush();
    const all = ((await (await t.admin('/admin/alerts', undefined, 'GET')).json()) as { alerts: typeof found }).alerts;
    found = all.filter((a) => a.detector === detector);
    if (expectSome && found.length > 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return found;
}

describe('detectors for people: password spraying and new-source sign-ins, quiet on a benign load', () => {
  let t: TestIdp;
  let subs: Record<string, string>;
  before(async () => {
    ({ t, subs } = await estate({ detectSprayUsers: 5 }, ['ann', 'ben', 'cat', 'dan']));
  });
  after(() => t.close());

  test('benign: people mistyping their own password, then signing in, each from their own address', async () => {
    for (const [i, u] of ['ann', 'ben', 'cat'].entries()) {
      const ip = `127.0.2.${i + 1}`;
      assert.equal(await signIn(t, u, 'wrong one', ip), false);
      assert.equal(await signIn(t, u, 'wrong again', ip), false);
      assert.equal(await signIn(t, u, PASSWORD, ip), true);
    }
    assert.deepEqual(await alerts(t, 'password_spraying', false), []);
    assert.deepEqual(await alerts(t, 'new_source_login', false), [], 'a first sign-in is nobody’s new source');
  });

  test('spraying: one address, one password, five users (real and not) → an alert about that address', async () => {
    for (const u of ['ann', 'ben', 'nobody1', 'cat', 'nobody2'])
      assert.equal(await signIn(t, u, 'Summer2026!', '127.0.3.9'), false);
    const found = await alerts(t, 'password_spraying', true);
    assert.equal(found.length, 1);
    assert.equal(found[0]?.key, 'ip:127.0.3.9');
    assert.match(found[0]?.summary ?? '', /5 different users from 127\.0\.3\.9/);
  });

  test('a sign-in from a new address in a new browser alerts; a new address in a browser that signed in before does not', async () => {
    const home = new Browser(t, { 'x-forwarded-for': '127.0.6.1' });
    assert.equal(await signIn(t, 'dan', PASSWORD, '127.0.6.1', home), true);
    assert.equal(await signIn(t, 'dan', PASSWORD, '127.0.6.1', home), true);
    assert.deepEqual(await alerts(t, 'new_source_login', false), []);
    // His own browser on another network (a phone moving, a café): known device, no alert.
    const travelling = new Browser(t, { 'x-forwarded-for': '127.0.6.2' });
    for (const [k, v] of home.cookies) travelling.cookies.set(k, v);
    assert.equal(await signIn(t, 'dan', PASSWORD, '127.0.6.2', travelling), true);
    assert.deepEqual(await alerts(t, 'new_source_login', false), []);
    // A stranger's browser somewhere else, with Dan's password.
    assert.equal(await signIn(t, 'dan', PASSWORD, '127.0.7.7'), true);
    const found = await alerts(t, 'new_source_login', true);
    assert.deepEqual(
      found.map((a) => a.key),
      [`user:${subs.dan}`],
    );
  });
});

describe('detectors for people: credential stuffing across users and addresses', () => {
  let t: TestIdp;
  before(async () => {
    ({ t } = await estate({ detectStuffingFailures: 16 }, ['eve', 'fay']));
  });
  after(() => t.close());

  test('quiet while most sign-ins succeed; a wave of leaked pairs, each user and address seen once, alerts', async () => {
    for (let i = 0; i < 3; i++)
      assert.equal(await signIn(t, i % 2 ? 'eve' : 'fay', PASSWORD, `127.0.8.${i + 1}`), true);
    assert.equal(await signIn(t, 'eve', 'typo', '127.0.8.9'), false);
    assert.deepEqual(await alerts(t, 'credential_stuffing', false), []);
    for (let i = 0; i < 40; i++) await signIn(t, `leaked${i}@mail.test`, `pw-${i}`, `127.0.9.${i + 1}`);
    const found = await alerts(t, 'credential_stuffing', true);
    assert.equal(found.length, 1);
    assert.match(found[0]?.summary ?? '', /failed sign-ins for \d+ users from \d+ addresses/);
    assert.deepEqual(await alerts(t, 'password_spraying', false), [], 'no address tried many users');
  });
});
