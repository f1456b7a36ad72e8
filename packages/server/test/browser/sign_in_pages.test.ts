// Issue 15: the sign-in pages in a real browser — Debian's Chromium driven by playwright-core —
// with the accessibility checked by axe-core and screenshots kept as test artefacts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { auditEvents, freePort, startTestIdp, type TestIdp } from '@latchkey/testkit';

const exec = promisify(execFile);
const CHROMIUM = '/usr/bin/chromium';
const PASSWORD = 'a garden of forking paths';
/** Screenshots of every page, kept for people to look at (the CI log names the folder). */
const ARTEFACTS = fileURLToPath(new URL('../../../../test-artifacts/screenshots/', import.meta.url));
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** The application the browser returns to: a plain page on a loopback port. */
async function startApp(): Promise<{ app: Server; APP: string }> {
  const app = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('back at the app'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  return { app, APP: `http://127.0.0.1:${(app.address() as AddressInfo).port}/callback` };
}

const available = existsSync(CHROMIUM);
if (!available && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);

describe('the sign-in pages in Chromium: usable with and without JavaScript, accessible, TOTP enrolment end to end', {
  skip: available ? false : `${CHROMIUM} is not installed (CI installs it)`,
}, () => {
  let t: TestIdp;
  let browser: Browser;
  let app: Server;
  let APP = '';

  before(async () => {
    ({ app, APP } = await startApp());
    t = await startTestIdp();
    await t.register({
      client_id: 'web-app',
      client_name: 'Orders',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      redirect_uris: [APP],
      audiences: ['https://orders.internal'],
    });
    await t.register({
      client_id: 'partner',
      client_name: 'Partner analytics',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      redirect_uris: [APP],
      audiences: ['https://orders.internal'],
      consent_required: true,
    });
    await t.admin('/admin/users', { username: 'june', password: PASSWORD });
    await t.admin('/admin/users', { username: 'kai', password: PASSWORD, mfa_required: true });
    await t.admin('/admin/users', { username: 'lee', generate_password: true });
    mkdirSync(ARTEFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    app?.close();
  });

  /** A context that trusts nothing but this IdP's local CA (its errors ignored), and never reaches the app: the redirect back is answered here. */
  async function context(options: { javaScriptEnabled?: boolean } = {}): Promise<BrowserContext> {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, ...options });
    await ctx.route(`${APP}**`, (route) =>
      route.fulfill({ status: 200, contentType: 'text/plain', body: 'back at the app' }),
    );
    return ctx;
  }
  const authorizeUrl = (clientId = 'web-app', scope = 'openid') => {
    const verifier = randomBytes(32).toString('base64url');
    const u = new URL(`${t.issuer}/authorize`);
    u.search = new URLSearchParams({
      client_id: clientId,
      redirect_uri: APP,
      response_type: 'code',
      scope,
      state: 'st',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    return u.toString();
  };
  const accessibility = accessibilityOf;
  const codeOf = (page: Page) => new URL(page.url()).searchParams.get('code');

  test('sign in by keyboard and labels; a wrong password is announced; an injected script does not run (CSP)', async () => {
    const ctx = await context();
    const page = await ctx.newPage();
    const blocked: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/.test(m.text())) blocked.push(m.text());
    });
    await page.goto(authorizeUrl());
    await accessibility(page, 'sign-in');
    await page.getByLabel('Username').fill('june');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await assert.doesNotReject(page.getByRole('alert').waitFor());
    assert.equal(await page.getByRole('alert').textContent(), 'The username or password is wrong.');
    assert.equal(await page.getByLabel('Username').inputValue(), 'june', 'the username is kept');
    await accessibility(page, 'sign-in-error');
    // An injected script does not run (script-src falls back to 'none').
    await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'document.title = "pwned"';
      document.body.append(s);
    });
    assert.notEqual(await page.title(), 'pwned');
    await page.getByLabel('Password').fill(PASSWORD);
    await Promise.all([page.waitForURL(`${APP}**`), page.getByLabel('Password').press('Enter')]);
    assert.ok(codeOf(page), 'back at the application with a code');
    assert.equal(new URL(page.url()).searchParams.get('iss'), t.issuer);
    await ctx.close();
  });

  test('works without JavaScript', async () => {
    const ctx = await context({ javaScriptEnabled: false });
    const page = await ctx.newPage();
    await page.goto(authorizeUrl());
    await page.getByLabel('Username').fill('june');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${APP}**`);
    assert.ok(codeOf(page));
    await ctx.close();
  });

  test('consent for a third-party client: what it asks, in words; Deny goes back with access_denied; Allow with a code (no JavaScript needed)', async () => {
    for (const [decision, javaScriptEnabled] of [
      ['Deny', true],
      ['Allow', false],
    ] as const) {
      const ctx = await context({ javaScriptEnabled });
      const page = await ctx.newPage();
      await page.goto(authorizeUrl('partner', 'openid profile email'));
      await page.getByLabel('Username').fill('june');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Allow Partner analytics?' }).waitFor();
      const asks = await page.getByRole('listitem').allTextContents();
      assert.deepEqual(asks, [
        'Know that it is you (your account identifier)',
        'See your name and username',
        'See your email address',
      ]);
      if (javaScriptEnabled) await accessibility(page, 'consent');
      await Promise.all([page.waitForURL(`${APP}**`), page.getByRole('button', { name: decision }).click()]);
      const back = new URL(page.url()).searchParams;
      if (decision === 'Deny') assert.deepEqual([back.get('error'), back.get('code')], ['access_denied', null]);
      else assert.ok(back.get('code'));
      await ctx.close();
    }
  });

  test('TOTP: enrol from the QR code on screen, save the recovery codes, continue; next time the code', async () => {
    const ctx = await context();
    const page = await ctx.newPage();
    await page.goto(authorizeUrl());
    await page.getByLabel('Username').fill('kai');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Set up your authenticator' }).waitFor();
    await accessibility(page, 'totp-enrol');
    // The QR code as the screen shows it, read by zbarimg as a phone's camera would.
    const shot = join(ARTEFACTS, 'totp-qr.png');
    await page.getByRole('img', { name: /QR code/ }).screenshot({ path: shot });
    const uri = new URL((await exec('zbarimg', ['--raw', '-q', shot])).stdout.trim());
    const secret = uri.searchParams.get('secret') as string;
    const code = async () => (await exec('oathtool', ['--totp', '-b', secret])).stdout.trim();
    await page.getByLabel('Code from the app').fill(await code());
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
    assert.equal(await page.locator('.codes li').count(), 10);
    await accessibility(page, 'totp-recovery-codes');
    await page.getByRole('button', { name: /continue/ }).click();
    await page.waitForURL(`${APP}**`);
    assert.ok(codeOf(page));
    await ctx.close();

    const next = await context();
    const again = await next.newPage();
    await again.goto(authorizeUrl());
    await again.getByLabel('Username').fill('kai');
    await again.getByLabel('Password').fill(PASSWORD);
    await again.getByRole('button', { name: 'Sign in' }).click();
    await again.getByRole('heading', { name: 'Enter your code' }).waitFor();
    await accessibility(again, 'totp-code');
    // The enrolment used this step's code; the next step's is the one to type (one step of drift allowed).
    const step = Math.floor(Date.now() / 30_000) + 1;
    const nextCode = (await exec('oathtool', ['--totp', '-b', secret, '--now', `@${step * 30}`])).stdout.trim();
    await again.getByLabel('Code').fill(nextCode);
    await again.getByRole('button', { name: 'Continue' }).click();
    await again.waitForURL(`${APP}**`);
    assert.ok(codeOf(again));
    assert.equal((await auditEvents(t.idp.storage, { type: 'user.login' })).at(-1)?.detail?.method, 'password+totp');
    await next.close();
  });

  test('a password the administrator generated: the change form, the policy’s message, then on', async () => {
    const lee = (await (await t.admin('/admin/users/lee/password', { generate: true })).json()) as { password: string };
    const ctx = await context();
    const page = await ctx.newPage();
    await page.goto(authorizeUrl());
    await page.getByLabel('Username').fill('lee');
    await page.getByLabel('Password').fill(lee.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    await accessibility(page, 'password-change');
    await page.getByLabel('New password', { exact: true }).fill('qwerty123456');
    await page.getByLabel('New password, again').fill('qwerty123456');
    await page.getByRole('button', { name: 'Save and continue' }).click();
    assert.match((await page.getByRole('alert').textContent()) ?? '', /exposed in breaches/);
    await accessibility(page, 'password-change-refused');
    await page.getByLabel('New password', { exact: true }).fill('my very own sentence');
    await page.getByLabel('New password, again').fill('my very own sentence');
    await page.getByRole('button', { name: 'Save and continue' }).click();
    await page.waitForURL(`${APP}**`);
    await ctx.close();
  });

  test('error and sign-out pages', async () => {
    const ctx = await context();
    const page = await ctx.newPage();
    await page.goto(`${t.issuer}/authorize?client_id=nobody&response_type=code`);
    await accessibility(page, 'authorize-error');
    await page.goto(`${t.issuer}/end_session`);
    await accessibility(page, 'sign-out-confirm');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'You are signed out' }).waitFor();
    await accessibility(page, 'signed-out');
    writeFileSync(
      join(ARTEFACTS, 'README.txt'),
      `Screenshots of Latchkey's sign-in pages, made by ${import.meta.url}\n`,
    );
    await ctx.close();
  });
});

describe('passkeys in Chromium with its virtual authenticator (WebAuthn through the DevTools protocol)', {
  skip: available ? false : `${CHROMIUM} is not installed (CI installs it)`,
}, () => {
  let t: TestIdp;
  let browser: Browser;
  let app: Server;
  let APP = '';

  before(async () => {
    ({ app, APP } = await startApp());
    // WebAuthn needs a secure context whose host is a domain: http://localhost is one (an IP address is not a valid RP ID).
    const port = await freePort();
    t = await startTestIdp({ tls: false, port, config: { issuer: `http://localhost:${port}` } });
    await t.register({
      client_id: 'web-app',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      redirect_uris: [APP],
      audiences: ['https://orders.internal'],
      require_second_factor: true,
    });
    await t.admin('/admin/users', { username: 'mona', password: PASSWORD });
    mkdirSync(ARTEFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    app?.close();
  });

  const authorizeUrl = (extra: Record<string, string> = {}) => {
    const u = new URL(`${t.issuer}/authorize`);
    u.search = new URLSearchParams({
      client_id: 'web-app',
      redirect_uri: APP,
      response_type: 'code',
      code_challenge: createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url'),
      code_challenge_method: 'S256',
      ...extra,
    }).toString();
    return u.toString();
  };

  test('enrol a passkey at sign-in, then sign in with it; a wrong one is refused', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = (await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    })) as { authenticatorId: string };
    await page.goto(authorizeUrl());
    await page.getByLabel('Username').fill('mona');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Set up your authenticator' }).waitFor();
    await page.getByRole('button', { name: 'Use a passkey instead' }).click();
    await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
    const { credentials } = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })) as {
      credentials: unknown[];
    };
    assert.equal(credentials.length, 1, 'the authenticator holds the new passkey');
    await page.getByRole('button', { name: /continue/ }).click();
    await page.waitForURL(`${APP}**`);
    const enrolled = (await auditEvents(t.idp.storage, { type: 'user.second_factor_enrolled' })).at(-1);
    assert.equal(enrolled?.detail?.factor, 'passkey');

    // Next time (prompt=login: the password again, not the session), the passkey is the second step.
    await page.goto(authorizeUrl({ prompt: 'login' }));
    await page.getByLabel('Username').fill('mona');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Use your passkey' }).waitFor();
    await accessibilityOf(page, 'passkey-second-step');
    await page.getByRole('button', { name: 'Use your passkey' }).click();
    await page.waitForURL(`${APP}**`);
    assert.ok(new URL(page.url()).searchParams.get('code'));
    assert.equal((await auditEvents(t.idp.storage, { type: 'user.login' })).at(-1)?.detail?.method, 'password+passkey');

    // A browser whose authenticator holds no passkey of Mona's cannot pass the step.
    const other = await browser.newContext();
    const stranger = await other.newPage();
    const cdp2 = await other.newCDPSession(stranger);
    await cdp2.send('WebAuthn.enable');
    await cdp2.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    await stranger.goto(authorizeUrl());
    await stranger.getByLabel('Username').fill('mona');
    await stranger.getByLabel('Password').fill(PASSWORD);
    await stranger.getByRole('button', { name: 'Sign in' }).click();
    await stranger.getByRole('button', { name: 'Use your passkey' }).click();
    await stranger.locator('#passkey-error').filter({ hasText: 'The passkey was not used' }).waitFor();
    assert.equal(new URL(stranger.url()).origin, new URL(t.issuer).origin, 'still at the IdP');
    // A forged answer posted anyway is refused by the IdP, and counted.
    await stranger.evaluate(() => {
      const form = document.querySelector('form[action="/authorize/passkey"]') as HTMLFormElement;
      (form.elements.namedItem('credential') as HTMLInputElement).value = JSON.stringify({
        id: 'AAAA',
        rawId: 'AAAA',
        type: 'public-key',
        response: { clientDataJSON: 'e30', authenticatorData: 'AAAA', signature: 'AAAA' },
      });
      form.submit();
    });
    await stranger.getByRole('alert').filter({ hasText: 'The passkey was not accepted.' }).waitFor();
    const failed = (await auditEvents(t.idp.storage, { type: 'user.login_failed' })).at(-1);
    assert.deepEqual([failed?.reason, failed?.detail?.method], ['second_factor_failed', 'password+passkey']);
    await other.close();
    await ctx.close();
  });
});

/** axe-core on a page (the CSP left as it is), with a screenshot. */
async function accessibilityOf(page: Page, name: string): Promise<void> {
  await page.evaluate(axeSource);
  const result = (await page.evaluate(() =>
    (globalThis as unknown as { axe: { run: () => Promise<unknown> } }).axe.run(),
  )) as { violations: { id: string; impact: string; help: string }[] };
  const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    serious.map((v) => `${v.id}: ${v.help}`),
    [],
    `${name}: no serious accessibility violation`,
  );
  await page.screenshot({ path: join(ARTEFACTS, `${name}.png`), fullPage: true });
}
