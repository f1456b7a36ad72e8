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
import { auditEvents, startTestIdp, type TestIdp } from '@latchkey/testkit';

const exec = promisify(execFile);
const CHROMIUM = '/usr/bin/chromium';
const PASSWORD = 'a garden of forking paths';
/** Screenshots of every page, kept for people to look at (the CI log names the folder). */
const ARTEFACTS = fileURLToPath(new URL('../../../../test-artifacts/screenshots/', import.meta.url));
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

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
    // The application the browser returns to: a plain page on a loopback port.
    app = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('back at the app'));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    APP = `http://127.0.0.1:${(app.address() as AddressInfo).port}/callback`;
    t = await startTestIdp();
    await t.register({
      client_id: 'web-app',
      client_name: 'Orders',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      redirect_uris: [APP],
      audiences: ['https://orders.internal'],
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
  const authorizeUrl = () => {
    const verifier = randomBytes(32).toString('base64url');
    const u = new URL(`${t.issuer}/authorize`);
    u.search = new URLSearchParams({
      client_id: 'web-app',
      redirect_uri: APP,
      response_type: 'code',
      scope: 'openid',
      state: 'st',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    return u.toString();
  };
  /** axe-core in the page (evaluated through the DevTools protocol, so the page's CSP stays as it is). */
  async function accessibility(page: Page, name: string): Promise<void> {
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
