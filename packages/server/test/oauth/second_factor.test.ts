import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { auditEvents, Browser, FakeClock, startTestIdp, type TestIdp } from '@latchkey/testkit';

const exec = promisify(execFile);
const APP = 'http://127.0.0.1/callback';
const PASSWORD = 'lighthouse keepers keep time';

describe('second factors: TOTP enrolled from the QR code (read by zbarimg, codes from oathtool), recovery codes, required per user or per client', () => {
  let t: TestIdp;
  let clock: FakeClock;
  let dir: string;
  let secret = '';
  let recovery: string[] = [];

  before(async () => {
    clock = new FakeClock(Date.UTC(2026, 11, 2, 9, 0, 5));
    t = await startTestIdp({ clock });
    dir = mkdtempSync(join(tmpdir(), 'latchkey-totp-'));
    for (const [client_id, extra] of [
      ['app', {}],
      ['strict-app', { require_second_factor: true }],
    ] as const)
      await t.register({
        client_id,
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        redirect_uris: [APP],
        audiences: ['https://orders.internal'],
        ...extra,
      });
    await t.admin('/admin/users', { username: 'hana', password: PASSWORD, mfa_required: true });
    await t.admin('/admin/users', { username: 'ivy', password: PASSWORD });
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await t.close();
  });

  /** The authorize URL and the PKCE verifier of one sign-in. */
  const start = (clientId = 'app') => {
    const verifier = randomBytes(32).toString('base64url');
    const url = new URL(`${t.issuer}/authorize`);
    url.search = new URLSearchParams({
      client_id: clientId,
      redirect_uri: APP,
      response_type: 'code',
      scope: 'openid',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    return { url, verifier };
  };
  const oathtool = async () =>
    (await exec('oathtool', ['--totp', '-b', secret, '--now', `@${Math.floor(clock.now() / 1000)}`])).stdout.trim();
  const redeem = async (back: Response, verifier: string, clientId = 'app') => {
    assert.equal(back.status, 303);
    const code = new URL(back.headers.get('location') as string).searchParams.get('code') as string;
    const res = await t.post('/token', {
      grant_type: 'authorization_code',
      client_id: clientId,
      code,
      redirect_uri: APP,
      code_verifier: verifier,
    });
    assert.equal(res.status, 200);
    return res.body;
  };

  test('a user who must use a second factor enrols at sign-in: QR code → authenticator → first code → recovery codes → the application', async () => {
    const browser = new Browser(t);
    const { url, verifier } = start();
    const page = await browser.signIn(url, 'hana', PASSWORD);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /img-src data:/);
    const html = await page.text();
    assert.match(html, /Set up your authenticator/);
    const png = /<img src="data:image\/png;base64,([^"]+)"/.exec(html)?.[1];
    assert.ok(png, 'the page shows a QR code');
    writeFileSync(join(dir, 'qr.png'), Buffer.from(png, 'base64'));
    // zbarimg reads the QR code as a phone's camera would.
    const uri = new URL((await exec('zbarimg', ['--raw', '-q', join(dir, 'qr.png')])).stdout.trim());
    assert.equal(uri.protocol, 'otpauth:');
    assert.equal(uri.searchParams.get('issuer'), 'Latchkey');
    assert.match(decodeURIComponent(uri.pathname), /Latchkey:hana$/);
    secret = uri.searchParams.get('secret') as string;
    assert.match(secret, /^[A-Z2-7]{32}$/, '160 bits in base32');
    assert.match(html, new RegExp(secret.slice(0, 4)), 'the key is also shown as text');

    const wrong = await browser.submit(html, '/authorize/enrol', { code: '000000' });
    assert.equal(wrong.status, 400);
    const codes = await browser.submit(html, '/authorize/enrol', { code: await oathtool() });
    assert.equal(codes.status, 200);
    const codesPage = await codes.text();
    recovery = [...codesPage.matchAll(/<li>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})<\/li>/g)].map((m) => m[1] as string);
    assert.equal(recovery.length, 10);
    const tokens = await redeem(await browser.submit(codesPage, '/authorize/continue', {}), verifier);
    assert.ok(tokens.id_token);
    const shown = (await (await t.admin('/admin/users/hana', undefined, 'GET')).json()) as Record<string, unknown>;
    assert.equal(shown.second_factor, 'totp');
    const enrolled = (await auditEvents(t.idp.storage, { type: 'user.second_factor_enrolled' })).at(-1);
    assert.deepEqual(enrolled?.detail, { username: 'hana', factor: 'totp', recovery_codes: 10 });
    assert.equal((await auditEvents(t.idp.storage, { type: 'user.login' })).at(-1)?.detail?.method, 'password+totp');
  });

  test('the next sign-in asks for a code: a wrong one is refused and counted; the right one works once', async () => {
    clock.advanceSeconds(30);
    const browser = new Browser(t);
    const { url, verifier } = start();
    const asked = await browser.signIn(url, 'hana', PASSWORD);
    const page = await asked.text();
    assert.match(page, /Enter your code/);
    const wrong = await browser.submit(page, '/authorize/second-factor', { code: '123456' });
    assert.equal(wrong.status, 401);
    const failed = (await auditEvents(t.idp.storage, { type: 'user.login_failed' })).at(-1);
    assert.deepEqual([failed?.reason, failed?.detail?.method], ['second_factor_failed', 'password+code']);
    const code = await oathtool();
    await redeem(await browser.submit(page, '/authorize/second-factor', { code }), verifier);
    // The same code, moments later, from another browser: refused (RFC 6238 §5.2).
    const other = new Browser(t);
    const again = await (await other.signIn(start().url, 'hana', PASSWORD)).text();
    assert.equal((await other.submit(again, '/authorize/second-factor', { code })).status, 401);
  });

  test('a recovery code works once, typed in any case', async () => {
    const browser = new Browser(t);
    const { url, verifier } = start();
    const page = await (await browser.signIn(url, 'hana', PASSWORD)).text();
    await redeem(
      await browser.submit(page, '/authorize/second-factor', { code: (recovery[0] as string).toLowerCase() }),
      verifier,
    );
    const other = new Browser(t);
    const again = await (await other.signIn(start().url, 'hana', PASSWORD)).text();
    assert.equal((await other.submit(again, '/authorize/second-factor', { code: recovery[0] as string })).status, 401);
    assert.equal(
      (await auditEvents(t.idp.storage, { type: 'user.login' })).at(-1)?.detail?.method,
      'password+recovery_code',
    );
  });

  test('required by a client: a user without one signs in to other clients directly and enrols for this one', async () => {
    const direct = start('app');
    const back = await new Browser(t).signIn(direct.url, 'ivy', PASSWORD);
    await redeem(back, direct.verifier);
    const strict = await new Browser(t).signIn(start('strict-app').url, 'ivy', PASSWORD);
    assert.equal(strict.status, 200);
    assert.match(await strict.text(), /Set up your authenticator/);
  });

  test('an administrator’s reset removes the factor and the recovery codes; the next sign-in enrols again', async () => {
    const reset = await t.admin('/admin/users/hana/second-factor/reset', {});
    assert.equal(reset.status, 200);
    assert.equal(((await reset.json()) as Record<string, unknown>).second_factor, null);
    const page = await new Browser(t).signIn(start().url, 'hana', PASSWORD);
    assert.match(await page.text(), /Set up your authenticator/);
    assert.equal(
      await t.idp.storage.recoveryCodesLeft((await t.idp.storage.getUserByUsername('hana'))?.sub as string),
      0,
    );
  });
});
