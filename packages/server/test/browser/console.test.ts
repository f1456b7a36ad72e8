// Issue 19: the admin console in a real browser — Debian's Chromium driven by playwright-core:
// sign in, register a service, rotate a key and see the timeline change, push an invalid policy
// and see Cedar's located error, roll back, watch an audit event arrive live, acknowledge an
// alert, see the dashboard's charts draw data; axe-core on every page; the CSP asserted and no
// request leaving the origin. Screenshots go to test-artifacts/screenshots/console-*.png.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { basicAuth, startTestIdp, type TestIdp } from '@latchkey/testkit';
import { CONSOLE_CSP } from '../../src/console/console_routes.ts';

const exec = promisify(execFile);
const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const ARTEFACTS = join(ROOT, 'test-artifacts/screenshots/');
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const SCHEMA = `entity Role;
entity Service in [Role];
namespace Orders {
  entity Order { tenant: String };
  action read, cancel appliesTo { principal: [Service], resource: Order, context: {} };
}
`;
const READS = 'permit(principal == Service::"gateway", action == Orders::Action::"read", resource);';

const available = existsSync(CHROMIUM);
if (!available && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);

describe('the admin console in Chromium', {
  skip: available ? false : `${CHROMIUM} is not installed (CI installs it)`,
}, () => {
  let t: TestIdp;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let origin = '';
  let gatewaySecret = '';
  /** Every URL the page asked for, and the console page's response headers. */
  const requested: string[] = [];
  const consoleErrors: string[] = [];
  let pageHeaders: Record<string, string> = {};

  before(async () => {
    // The console as `npm run build` compiles it (fast: esbuild), so the test sees the source as it is.
    await exec(process.execPath, [join(ROOT, 'scripts/build_console.mjs')]);
    t = await startTestIdp();
    origin = new URL(t.issuer).origin;
    gatewaySecret = (
      await t.register({
        client_id: 'gateway',
        client_name: 'Gateway',
        grant_types: ['client_credentials'],
        audiences: ['https://orders.demo'],
        default_audience: 'https://orders.demo',
        roles: ['frontend'],
      })
    ).client_secret;
    await t.register({ client_id: 'orders', grant_types: ['client_credentials'], audiences: ['https://billing.demo'] });
    // Two policy versions, so that there is something to diff and roll back to.
    for (const policies of [{ reads: READS }, { reads: READS, cancels: READS.replace('"read"', '"cancel"') }]) {
      const r = await t.admin('/admin/policy', { schema: { 'orders.cedarschema': SCHEMA }, policies });
      assert.equal(r.status, 201, await r.text());
    }
    // Traffic for the dashboard: tokens, failed authentications (a burst: an alert), denials.
    for (let i = 0; i < 5; i++)
      assert.equal(
        (
          await t.post(
            '/token',
            { grant_type: 'client_credentials' },
            { authorization: basicAuth('gateway', gatewaySecret) },
          )
        ).status,
        200,
      );
    for (let i = 0; i < 12; i++)
      await t.post(
        '/token',
        { grant_type: 'client_credentials' },
        { authorization: basicAuth('orders', `guess-${i}`) },
      );
    const denials = await t.fetch(`${t.issuer}/audit/events`, {
      method: 'POST',
      headers: { authorization: basicAuth('gateway', gatewaySecret), 'content-type': 'application/json' },
      body: JSON.stringify({
        events: [1, 2, 3].map(() => ({
          type: 'authz.decision',
          outcome: 'failure',
          actor: 'Service::"gateway"',
          detail: { action: 'Orders::Action::"cancel"' },
        })),
      }),
    });
    assert.equal(denials.status, 202);
    mkdirSync(ARTEFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
    ctx.on('request', (r) => requested.push(r.url()));
    page = await ctx.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('dialog', (d) => void d.accept());
    page.on('response', async (r) => {
      if (new URL(r.url()).pathname === '/console/') pageHeaders = await r.allHeaders();
    });
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  async function shoot(name: string): Promise<void> {
    await page.evaluate(axeSource);
    const result = (await page.evaluate(() =>
      (globalThis as unknown as { axe: { run: () => Promise<unknown> } }).axe.run(),
    )) as { violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] };
    const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(
      serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
      [],
      `${name}: no serious accessibility violation`,
    );
    await page.screenshot({ path: join(ARTEFACTS, `console-${name}.png`), fullPage: true });
  }

  const go = async (route: string, heading: string) => {
    await page.getByRole('link', { name: heading, exact: true }).click();
    await page.waitForURL(`**/console/#/${route}`);
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  };

  test('sign in with the admin token; a wrong one is refused with a message', async () => {
    await page.goto(`${t.issuer}/console`);
    await page.getByRole('heading', { name: 'Latchkey console' }).waitFor();
    assert.equal(pageHeaders['content-security-policy'], CONSOLE_CSP);
    assert.equal(pageHeaders['x-frame-options'], 'DENY');
    await shoot('sign-in');
    await page.getByLabel('Admin token').fill('wrong');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'the admin token is not valid' }).waitFor();
    await page.getByLabel('Admin token').fill(t.adminToken);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    const cookies = await ctx.cookies();
    const session = cookies.find((c) => c.name === '__Host-lk-console');
    assert.ok(session?.httpOnly && session.secure && session.sameSite === 'Strict');
  });

  test('the dashboard draws tokens, failed authentications and denials', async () => {
    await page.locator('figure.chart').first().waitFor();
    const totals = await page.$$eval('figure.chart', (figures) =>
      figures.map((f) => ({
        title: f.querySelector('figcaption strong')?.textContent,
        total: Number(f.getAttribute('data-total')),
        // Pixels the chart painted: data lines over the axes.
        painted: (() => {
          const c = f.querySelector('canvas');
          if (!c) return 0;
          const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
          return n;
        })(),
      })),
    );
    const by = (title: string) => totals.find((x) => x.title?.startsWith(title));
    assert.ok(by('Tokens issued')!.total >= 5, JSON.stringify(totals));
    assert.ok(by('Failed authentications')!.total >= 12);
    assert.equal(by('Denied decisions')!.total, 3);
    for (const x of totals) assert.ok(x.painted > 1000, `${x.title} is drawn`);
    await page.getByRole('cell', { name: 'Orders::Action::"cancel"' }).waitFor();
    await shoot('dashboard');
  });

  test('register a service: its secret shown once, then listed', async () => {
    await go('services', 'Services');
    await page.getByRole('button', { name: 'Register a service' }).click();
    await page.getByLabel('Name').fill('Inventory');
    await page.getByLabel(/Audiences/).fill('https://inventory.demo');
    await page.getByLabel('Roles').fill('backend');
    await shoot('services-register');
    await page.getByRole('button', { name: 'Register', exact: true }).click();
    const secret = await page.locator('code.secret').textContent();
    assert.match(secret ?? '', /^[A-Za-z0-9_-]{43}$/);
    await page.getByRole('button', { name: 'Done' }).click();
    const clients = (await (await t.admin('/admin/clients', undefined, 'GET')).json()) as { clients: any[] };
    const made = clients.clients.find((c) => c.client_name === 'Inventory');
    assert.deepEqual(made.audiences, ['https://inventory.demo']);
    await page.getByRole('heading', { level: 2, name: made.client_id }).waitFor();
    await page.getByRole('cell', { name: 'https://inventory.demo' }).waitFor();
    // The secret the page showed is the client's.
    const token = await t.post(
      '/token',
      { grant_type: 'client_credentials', resource: 'https://inventory.demo' },
      {
        authorization: basicAuth(made.client_id, secret!),
      },
    );
    assert.equal(token.status, 200);
    await shoot('services');
  });

  test('users: create one (the generated password shown once), set roles, disable', async () => {
    await go('users', 'Users');
    await page.getByRole('button', { name: 'Create a user' }).click();
    await page.getByLabel('Username').fill('kim');
    await page.getByLabel(/^Roles/).fill('support');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    const password = await page.locator('code.secret').textContent();
    assert.match(password ?? '', /^[A-Za-z0-9_-]{22}$/);
    await page.getByRole('button', { name: 'Done' }).click();
    await page.getByRole('heading', { level: 2, name: 'kim' }).waitFor();
    await page.getByLabel('Roles', { exact: true }).fill('support auditor');
    await page.getByRole('button', { name: 'Save roles' }).click();
    await page.getByRole('status').filter({ hasText: 'Roles of kim: support, auditor.' }).waitFor();
    await shoot('users');
    await page.getByRole('button', { name: 'Disable' }).click();
    await page.locator('tr[data-user="kim"] .badge.disabled').waitFor();
    const users = (await (await t.admin('/admin/users', undefined, 'GET')).json()) as { users: any[] };
    const kim = users.users.find((u) => u.username === 'kim');
    assert.deepEqual([kim.roles, kim.disabled, kim.must_change_password], [['support', 'auditor'], true, true]);
    const events = (await (await t.admin(`/admin/audit?subject=${kim.sub}`, undefined, 'GET')).json()) as {
      events: { type: string }[];
    };
    assert.deepEqual(
      events.events.map((e) => e.type),
      ['user.created', 'user.updated', 'user.disabled'],
    );
  });

  test('rotate a key now: the timeline gains a row and the new key is current', async () => {
    await go('keys', 'Signing keys');
    const rows = page.locator('figure.timeline g[data-kid]');
    await rows.first().waitFor();
    const before = await rows.count();
    const currentBefore = await page.locator('tr[data-state="current"]').getAttribute('data-kid');
    await shoot('keys-before');
    await page.getByRole('button', { name: 'Rotate now' }).click();
    await page.getByRole('status').filter({ hasText: 'Rotated' }).waitFor();
    await page.waitForFunction(
      (n) => document.querySelectorAll('figure.timeline g[data-kid]').length === n + 1,
      before,
    );
    const currentAfter = await page.locator('tr[data-state="current"]').getAttribute('data-kid');
    assert.notEqual(currentAfter, currentBefore);
    assert.equal(await page.locator(`tr[data-kid="${currentBefore}"]`).getAttribute('data-state'), 'retired');
    const keys = (await (await t.admin('/admin/keys', undefined, 'GET')).json()) as { keys: any[] };
    assert.equal(keys.keys.find((k) => k.state === 'current').kid, currentAfter);
    // The retired key's bar on the timeline is there.
    await page.locator(`g[data-kid="${currentBefore}"] rect.tl-retired`).waitFor();
    await shoot('keys-after');
  });

  test("push an invalid policy: Cedar's located error; then roll back", async () => {
    await go('policies', 'Policies');
    await page.locator('tr[data-version="2"]').waitFor();
    // The diff between the two versions shows the added policy set.
    await page.getByRole('heading', { name: /policy set cancels \(added\)/ }).waitFor();
    await page
      .locator('textarea[data-policy="reads"]')
      .fill('permit(principal, action == Orders::Action::"fly", resource);');
    await page.getByRole('button', { name: 'Validate' }).click();
    const problem = page.getByRole('alert').locator('ul.problems li').first();
    await problem.waitFor();
    assert.match((await problem.textContent()) ?? '', /^reads:\d+:\d+ .*fly/);
    await page.getByRole('button', { name: 'Push' }).click();
    await page.getByRole('alert').filter({ hasText: 'validation_failed' }).waitFor();
    assert.match((await page.getByRole('alert').locator('code.where').first().textContent()) ?? '', /^reads:1:\d+$/);
    await shoot('policies-invalid');
    const versions = async () =>
      ((await (await t.admin('/admin/policy/versions', undefined, 'GET')).json()) as { versions: any[] }).versions;
    assert.equal((await versions())[0].version, 2, 'nothing was published');
    await page.getByRole('button', { name: 'Roll back to 1' }).click();
    await page.getByRole('status').filter({ hasText: 'Rolled back: version 3 has the contents of 1' }).waitFor();
    await page.locator('tr[data-version="3"]').waitFor();
    const active = (await (await t.admin('/admin/policy', undefined, 'GET')).json()) as { policies: object };
    assert.deepEqual(Object.keys(active.policies), ['reads']);
    await shoot('policies');
  });

  test('the audit trail: an event appears live; the chain is verified; an event opens', async () => {
    await go('audit', 'Audit trail');
    await page.locator('[data-chain-ok="true"]').waitFor();
    await page.getByLabel('Live tail').check();
    // Give the stream its first read, then make an event elsewhere (the CLI's way: the admin bearer).
    await page.waitForTimeout(300);
    const r = await t.post(
      '/token',
      { grant_type: 'client_credentials' },
      { authorization: basicAuth('gateway', gatewaySecret) },
    );
    assert.equal(r.status, 200);
    const fresh = page.locator('tr.fresh[data-type="token.issued"]');
    await fresh.first().waitFor({ timeout: 10_000 });
    await fresh.first().getByRole('button').click();
    await page.getByRole('heading', { name: /^Event \d+ token.issued$/ }).waitFor();
    assert.match((await page.locator('pre.json').textContent()) ?? '', /"client_id": "gateway"/);
    await shoot('audit');
    await page.getByLabel('Live tail').uncheck();
  });

  test('acknowledge an alert: it leaves the open list; its events are shown', async () => {
    await go('alerts', 'Alerts');
    const card = page.locator('article.alert').first();
    await card.waitFor();
    await card.getByRole('button', { name: /Show the events/ }).click();
    await card.getByRole('cell', { name: 'client.auth_failed' }).first().waitFor();
    await shoot('alerts');
    const id = await card.getAttribute('data-alert');
    await card.getByRole('button', { name: 'Acknowledge' }).click();
    await page.locator(`article[data-alert="${id}"]`).waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'acknowledged' }).click();
    await page
      .locator(`article[data-alert="${id}"]`)
      .getByText(/acknowledged .* by admin/)
      .waitFor();
    const open = (await (await t.admin('/admin/alerts?state=open', undefined, 'GET')).json()) as { alerts: any[] };
    assert.ok(!open.alerts.some((a) => String(a.id) === id));
  });

  test('the CA page lists its roots; every page passed axe', async () => {
    await go('ca', 'Workload CA');
    await page.locator('span.badge.active').first().waitFor();
    await shoot('ca');
  });

  test('a one-time link signs a fresh browser in once; signing out ends the session', async () => {
    const link = (await (await t.admin('/admin/console/links', undefined)).json()) as { url: string };
    const other = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const p = await other.newPage();
      await p.goto(link.url);
      await p.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
      assert.equal(new URL(p.url()).hash, '#/dashboard', 'the code left the address bar');
      const p2 = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
      await p2.goto(link.url);
      await p2.getByRole('alert').filter({ hasText: 'The sign-in link did not work' }).waitFor();
      await p.getByRole('button', { name: 'Sign out' }).click();
      await p.getByRole('heading', { name: 'Latchkey console' }).waitFor();
      await p.reload();
      await p.getByLabel('Admin token').waitFor();
    } finally {
      await other.close();
    }
  });

  test("a user with the latchkey-admin role signs in through the IdP's own sign-in page", async () => {
    const made = await t.admin('/admin/users', { username: 'root', password: 'the console is mine, all mine' });
    const sub = ((await made.json()) as { sub: string }).sub;
    await t.admin(`/admin/users/${sub}/roles`, { roles: ['latchkey-admin'] }, 'PUT');
    const other = await browser.newContext({ ignoreHTTPSErrors: true });
    other.on('request', (r) => requested.push(r.url()));
    try {
      const p = await other.newPage();
      await p.goto(`${t.issuer}/console/`);
      await p.getByRole('button', { name: 'Sign in with a Latchkey account' }).click();
      await p.waitForURL('**/authorize**');
      await p.getByLabel('Username').fill('root');
      await p.getByLabel('Password').fill('the console is mine, all mine');
      await p.getByRole('button', { name: 'Sign in', exact: true }).click();
      await p.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
      const back = new URL(p.url());
      assert.equal(back.search, '', 'the code left the address bar');
      assert.equal(back.hash, '#/dashboard');
      // An action as root is audited as root.
      await p.getByRole('link', { name: 'Signing keys', exact: true }).click();
      await p.getByRole('button', { name: 'Announce a next key' }).click();
      await p.getByRole('status').filter({ hasText: 'A next key is announced' }).waitFor();
      const events = (await (
        await t.admin('/admin/audit?type=key.rotation_requested&order=newest&limit=1', undefined, 'GET')
      ).json()) as {
        events: { actor: string }[];
      };
      assert.equal(events.events[0]?.actor, 'admin:root');
    } finally {
      await other.close();
    }
  });

  test('no request left the origin; no script error', () => {
    const foreign = requested.filter((u) => !u.startsWith('data:') && new URL(u).origin !== origin);
    assert.deepEqual(foreign, []);
    assert.ok(
      requested.some((u) => u.includes('/admin/stats')),
      'the pages used the admin API',
    );
    assert.deepEqual(
      // The refusals the tests provoke (a wrong token, an invalid policy, a used link) are logged by Chromium.
      consoleErrors.filter((e) => !/status of 40[0139]/.test(e)),
      [],
    );
  });
});
