import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VerifyError } from '@latchkey/sdk/verify';
import { basicAuth, freePort, type ServedCli, serveCli, type TestIdp, tlsFetch, userTokens } from '@latchkey/testkit';
import { BILLING, type DemoService, GATEWAY, ORDERS, startBilling, startGateway, startOrders } from './services.ts';

/** One narrated step: what happened, whether it did what the demo says, and its numbers. */
export interface Step {
  step: string;
  ok: boolean;
  says: string;
  [detail: string]: unknown;
}

const SCHEMA = `entity Role;
entity Group;
entity Service in [Role];
entity User in [Role, Group];
type Txn = { id: String, sub: String, scope: String, requester: String, tctx?: { method: String, path: String } };
namespace Orders {
  entity Order { tenant: String };
  action read, cancel appliesTo { principal: [Service, User], resource: Order, context: {} };
}
namespace Billing {
  entity Invoice;
  action read appliesTo {
    principal: [Service, User], resource: Invoice,
    context: { actors: Set<String>, caller: String, depth: Long, txn?: Txn }
  };
}
`;
/** The estate's Cedar policies; `trustDomain` is where Transaction Tokens are audienced. */
const policiesFor = (trustDomain: string) => ({
  'gateway-reads-orders': 'permit(principal == Service::"gateway", action == Orders::Action::"read", resource);',
  'only-billing-cancels':
    'forbid(principal, action == Orders::Action::"cancel", resource) unless { principal == Service::"billing" };',
  'customers-read-orders': 'permit(principal in Role::"customer", action == Orders::Action::"read", resource);',
  'gateway-acts-for-users': `permit(principal == Latchkey::Client::"gateway", action == Latchkey::Action::"exchange",
  resource == Latchkey::Audience::"${ORDERS}")
when { context.subject_kind == "user" && context.subject_audiences.contains("${GATEWAY}") };`,
  'gateway-starts-transactions': `permit(principal == Latchkey::Client::"gateway", action == Latchkey::Action::"exchange",
  resource == Latchkey::Audience::"${trustDomain}") when { context.requested_token_type == "txn_token" };`,
  'orders-to-billing-for-the-gateway': `permit(principal == Latchkey::Client::"orders", action == Latchkey::Action::"exchange",
  resource == Latchkey::Audience::"${BILLING}") when { context.caller == "gateway" };`,
  'billing-reads-in-a-transaction-from-orders': `permit(principal in Role::"customer", action == Billing::Action::"read", resource)
when { context has txn && context.caller == "orders" && context.actors.contains("gateway") };`,
});
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const PASSWORD = 'correct horse battery staple, demo';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The running estate: the IdP (its own process, embedded SQLite) and the services on loopback. */
export interface DemoEstate {
  issuer: string;
  adminToken: string;
  dataDir: string;
  idp: ServedCli;
  services: DemoService[];
  /** Process ids started (the test checks none is left behind). */
  pids: number[];
  /** A fresh one-time sign-in link to the console. */
  consoleLink(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts the estate and plays the scenario, calling `narrate` with each step as it happens:
 * tokens issued, an allowed and a denied decision with their reasons, a key rotation under traffic
 * with no failed request, a revocation enforced within a second, a brute-force attempt raising an
 * alert, and the audit chain verified.
 */
export async function runDemo(narrate: (s: Step) => void): Promise<DemoEstate> {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-demo-'));
  const port = await freePort();
  const adminToken = randomBytes(32).toString('base64url');
  const idp = await serveCli({
    LATCHKEY_DATA_DIR: dataDir,
    LATCHKEY_PORT: String(port),
    LATCHKEY_ADMIN_TOKEN: adminToken,
    LATCHKEY_LOG_LEVEL: 'warn',
    LATCHKEY_DETECT_INTERVAL: '1',
  });
  const issuer = `https://localhost:${port}`;
  const idpCa = readFileSync(join(dataDir, 'ca.pem'), 'utf8');
  const f = tlsFetch(idpCa);
  const services: DemoService[] = [];
  const estate: DemoEstate = {
    issuer,
    adminToken,
    dataDir,
    idp,
    services,
    pids: [idp.child.pid!],
    consoleLink: async () => '',
    async stop() {
      for (const s of services.reverse()) await s.close().catch(() => undefined);
      if (idp.child.exitCode === null) {
        idp.child.kill('SIGTERM');
        await idp.exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    const admin = async (path: string, body?: unknown, method = body === undefined ? 'GET' : 'POST') => {
      const res = await f(`${issuer}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${adminToken}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    narrate({ step: 'idp_started', ok: true, says: `the IdP is up at ${issuer} (embedded SQLite in ${dataDir})` });

    const register = async (metadata: Record<string, unknown>) => {
      const r = await admin('/register', metadata);
      if (r.status !== 201) throw new Error(`registering ${metadata.client_id}: ${r.status} ${JSON.stringify(r.body)}`);
      return { clientId: r.body.client_id as string, clientSecret: r.body.client_secret as string };
    };
    const services_ = { grant_types: ['client_credentials', EXCHANGE] };
    const gatewayCreds = await register({ client_id: 'gateway', audiences: [ORDERS], ...services_ });
    const ordersCreds = await register({ client_id: 'orders', audiences: [BILLING], ...services_ });
    const billingCreds = await register({ client_id: 'billing', audiences: [] });
    // The shop's web front end: a public client users sign in through (authorization code + PKCE).
    const shopRedirect = 'http://127.0.0.1:9/callback';
    await register({
      client_id: 'shop',
      client_name: 'Shop',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      redirect_uris: [shopRedirect],
      audiences: [GATEWAY],
      scope: 'openid orders:read',
    });
    const ann = await admin('/admin/users', { username: 'ann', password: PASSWORD });
    await admin(`/admin/users/${ann.body.sub}/roles`, { roles: ['customer'] }, 'PUT');
    const trustDomain = (await (await f(`${issuer}/.well-known/openid-configuration`)).json()).transaction_token_audience;
    const policies = policiesFor(trustDomain);
    const published = await admin('/admin/policy', {
      schema: { 'estate.cedarschema': SCHEMA },
      policies,
      entities: [],
    });
    narrate({
      step: 'registered',
      ok: published.status === 201 && ann.status === 201,
      says: `registered the services gateway, orders and billing, the shop's web client and a user, ann (role customer); published Cedar policies (version ${published.body.version}): ${Object.keys(policies).join(', ')}`,
    });

    const common = { issuer, fetch: f, idpCa, trustDomain };
    let billingUrl = '';
    const orders = await startOrders({ ...common, credentials: ordersCreds, billing: () => billingUrl });
    services.push(orders);
    const billing = await startBilling({ ...common, credentials: billingCreds, dir: dataDir });
    services.push(billing);
    estate.pids.push(...billing.pids);
    billingUrl = billing.url;
    const gateway = await startGateway({ ...common, credentials: gatewayCreds, orders: orders.url });
    services.push(gateway);
    narrate({
      step: 'mtls',
      ok: orders.url.startsWith('https:') && billing.url.startsWith('https:'),
      says: `services up: gateway (TypeScript, SDK) → orders (TypeScript, SDK) over mTLS, orders → billing (Python, standard library) behind the sidecar, over mTLS; workload certificates from the IdP's CA: ${gateway.identity.spiffeId}, ${orders.identity.spiffeId}, spiffe://${trustDomain}/svc/billing; tokens bound to them (RFC 8705)`,
    });
    const call = async (method: string, id: string) => {
      const res = await fetch(`${gateway.url}/api/orders/${id}`, { method });
      return { status: res.status, body: (await res.json().catch(() => ({}))) as any };
    };

    // Tokens: the gateway's token client gets one for orders.
    const token = await gateway.tokens.getToken({ audience: 'https://orders.demo' });
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    narrate({
      step: 'token_issued',
      ok: claims.client_id === 'gateway' && claims.aud === 'https://orders.demo',
      says: `gateway got a ${token.length}-byte RFC 9068 token for ${claims.aud}, valid ${claims.exp - claims.iat} s (jti ${claims.jti})`,
      bytes: token.length,
    });

    const allowed = await call('GET', '42');
    narrate({
      step: 'allowed',
      ok: allowed.status === 200 && allowed.body.policies?.includes('gateway-reads-orders'),
      says: `gateway → orders GET /orders/42: ${allowed.status}, allowed by ${allowed.body.policies?.join(', ')} (verified and decided inside orders, no IdP call)`,
    });
    const denied = await call('DELETE', '42');
    narrate({
      step: 'denied',
      ok: denied.status === 403 && denied.body.reasons?.includes('only-billing-cancels'),
      says: `gateway → orders DELETE /orders/42: ${denied.status}, denied by ${denied.body.reasons?.join(', ')}`,
    });

    // A user signs in at the IdP and asks the gateway for an order's invoice: the request travels
    // gateway → orders → billing on her behalf, each hop with an exchanged token (`act` grows) inside
    // one Transaction Token.
    const post = async (path: string, form: Record<string, string | string[]> | string) => {
      const res = await f(`${issuer}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: typeof form === 'string' ? form : new URLSearchParams(form as Record<string, string>).toString(),
      });
      return { status: res.status, headers: res.headers, body: await res.json() };
    };
    const userToken = (
      await userTokens({ issuer, fetch: f, post } as unknown as TestIdp, {
        clientId: 'shop',
        redirectUri: shopRedirect,
        username: 'ann',
        password: PASSWORD,
        scope: 'openid orders:read',
        resource: [GATEWAY],
      })
    ).access_token;
    const mine = await fetch(`${gateway.url}/api/me/orders/42/invoice`, {
      headers: { authorization: `Bearer ${userToken}` },
    });
    const hops = (await mine.json()) as any;
    const act = hops.billing?.act;
    narrate({
      step: 'user_chain',
      ok:
        mine.status === 200 &&
        hops.billing?.for_user === ann.body.sub &&
        act?.sub === 'orders' &&
        act?.act?.sub === 'gateway' &&
        hops.billing?.peer === `spiffe://${trustDomain}/svc/orders` &&
        hops.billing?.txn === hops.txn,
      says: `ann signed in (authorization code + PKCE, the shop's client) and asked for order 42's invoice: gateway → orders → billing answered ${mine.status}; billing (Python) saw user ${hops.billing?.for_user}, act chain ${JSON.stringify(act)}, mTLS peer ${hops.billing?.peer}, transaction ${hops.billing?.txn}; orders allowed it by ${hops.policies?.join(', ')}`,
    });

    // A key rotation under traffic: requests every 20 ms across it; none may fail.
    let sent = 0;
    let failed = 0;
    let running = true;
    const traffic = (async () => {
      while (running) {
        sent++;
        if ((await call('GET', String(sent))).status !== 200) failed++;
        await sleep(20);
      }
    })();
    await sleep(500);
    const before = (await admin('/admin/keys')).body;
    const rotated = await admin('/admin/keys/rotate', { now: true });
    await sleep(1500);
    // A token signed by the new key verifies at orders as well.
    const fresh = (
      await f(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: basicAuth(gatewayCreds.clientId, gatewayCreds.clientSecret),
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials&resource=https%3A%2F%2Forders.demo',
      }).then((r) => r.json())
    ).access_token as string;
    const newKid = JSON.parse(Buffer.from(fresh.split('.')[0]!, 'base64url').toString()).kid as string;
    const freshOk = await orders.verifier.verify(fresh).then(
      () => true,
      () => false,
    );
    running = false;
    await traffic;
    const oldKid = (before.keys as { kid: string; state: string }[]).find((k) => k.state === 'current')?.kid;
    narrate({
      step: 'key_rotated',
      ok: rotated.status === 200 && failed === 0 && freshOk && newKid !== oldKid,
      says: `rotated the signing key (${oldKid} → ${newKid}) under traffic: ${sent} requests, ${failed} failed; a token signed by the new key verifies`,
      requests: sent,
      failed,
    });

    // A revocation: the gateway's token, refused by orders within a second of the IdP's answer.
    const current = await gateway.tokens.getToken({ audience: 'https://orders.demo' });
    const revoke = await f(`${issuer}/revoke`, {
      method: 'POST',
      headers: {
        authorization: basicAuth(gatewayCreds.clientId, gatewayCreds.clientSecret),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: `token=${current}`,
    });
    const answered = performance.now();
    let enforcedMs = Number.POSITIVE_INFINITY;
    // The token is bound to the gateway's certificate: verified as orders sees it, over that certificate.
    const mtlsCertificate = new X509Certificate(gateway.identity.certificate.pem);
    while (performance.now() - answered < 5000) {
      const refused = await orders.verifier.verify(current, { mtlsCertificate }).then(
        () => false,
        (err: unknown) => err instanceof VerifyError && err.code === 'token_revoked',
      );
      if (refused) {
        enforcedMs = performance.now() - answered;
        break;
      }
      await sleep(5);
    }
    // The gateway's next call: orders answers 401, the token client gets a new token and retries.
    const after = await call('GET', '43');
    narrate({
      step: 'revoked',
      ok: revoke.status === 200 && enforcedMs < 1000 && after.status === 200,
      says: `revoked the gateway's token: orders refused it ${enforcedMs.toFixed(0)} ms after the IdP answered (pushed on the revocation feed); the gateway's next call got a new token and ${after.status}`,
      enforcedMs: Math.round(enforcedMs),
    });

    // A brute-force attempt on the gateway's credentials raises an alert.
    for (let i = 0; i < 12; i++)
      await f(`${issuer}/token`, {
        method: 'POST',
        headers: { authorization: basicAuth('gateway', `guess-${i}`), 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      }).then((r) => r.arrayBuffer());
    let alert: any;
    for (let i = 0; i < 50 && !alert; i++) {
      await sleep(200);
      alert = ((await admin('/admin/alerts')).body.alerts as any[]).find((a) => a.detector === 'failed_auth_burst');
    }
    narrate({
      step: 'alert',
      ok: alert !== undefined,
      says: alert
        ? `12 wrong secrets for gateway: alert #${alert.id} (${alert.detector}, ${alert.severity}): ${alert.summary}`
        : 'no alert was raised',
    });

    // The audit trail: every decision made in orders reached it; the chain verifies.
    await orders.audit.flush();
    const decisions = (await admin('/admin/audit?type=authz.decision&limit=1000')).body.events.length as number;
    const chain = (await admin('/admin/audit/verify')).body;
    narrate({
      step: 'audit_verified',
      ok: chain.ok === true && decisions >= 3,
      says: `audit chain verified: ${chain.checked} events hash-chained and checkpointed, ${decisions} of them orders' permission decisions`,
      events: chain.checked,
    });

    // The console: served by the IdP; a one-time link signs a browser in (tried here once).
    const trial = (await admin('/admin/console/links', undefined, 'POST')).body.url as string;
    const signedIn = await f(`${issuer}/console/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: trial.split('code=')[1] }),
    });
    const page = await f(`${issuer}/console/`);
    await page.arrayBuffer();
    narrate({
      step: 'console',
      ok: signedIn.status === 200 && page.status === 200,
      says: `the admin console is at ${issuer}/console/ (a one-time sign-in link signed in: ${signedIn.status}); it shows the services, keys, CA, policies, audit trail, alerts and charts of all of the above`,
    });
    estate.consoleLink = async () => (await admin('/admin/console/links', undefined, 'POST')).body.url as string;
    return estate;
  } catch (err) {
    await estate.stop();
    throw err;
  }
}
