import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VerifyError } from '@latchkey/sdk/verify';
import { basicAuth, freePort, type ServedCli, serveCli, tlsFetch } from '@latchkey/testkit';
import { type DemoService, startGateway, startOrders } from './services.ts';

/** One narrated step: what happened, whether it did what the demo says, and its numbers. */
export interface Step {
  step: string;
  ok: boolean;
  says: string;
  [detail: string]: unknown;
}

const SCHEMA = `entity Role;
entity Service in [Role];
namespace Orders {
  entity Order { tenant: String };
  action read, cancel appliesTo { principal: [Service], resource: Order, context: {} };
}
`;
const POLICIES = {
  'gateway-reads-orders': 'permit(principal == Service::"gateway", action == Orders::Action::"read", resource);',
  'only-billing-cancels':
    'forbid(principal, action == Orders::Action::"cancel", resource) unless { principal == Service::"billing" };',
};

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
  const f = tlsFetch(readFileSync(join(dataDir, 'ca.pem'), 'utf8'));
  const services: DemoService[] = [];
  const estate: DemoEstate = {
    issuer,
    adminToken,
    dataDir,
    idp,
    services,
    pids: [idp.child.pid!],
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

    const register = async (client_id: string, audiences: string[]) => {
      const r = await admin('/register', { client_id, audiences });
      if (r.status !== 201) throw new Error(`registering ${client_id}: ${r.status} ${JSON.stringify(r.body)}`);
      return { clientId: r.body.client_id as string, clientSecret: r.body.client_secret as string };
    };
    const gatewayCreds = await register('gateway', ['https://orders.demo']);
    const ordersCreds = await register('orders', ['https://billing.demo']);
    const published = await admin('/admin/policy', {
      schema: { 'orders.cedarschema': SCHEMA },
      policies: POLICIES,
      entities: [],
    });
    narrate({
      step: 'registered',
      ok: published.status === 201,
      says: `registered the services gateway and orders; published Cedar policies (version ${published.body.version}): ${Object.keys(POLICIES).join(', ')}`,
    });

    const orders = await startOrders({ issuer, credentials: ordersCreds, fetch: f });
    services.push(orders);
    const gateway = await startGateway({ issuer, credentials: gatewayCreds, fetch: f, orders: orders.url });
    services.push(gateway);
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
    while (performance.now() - answered < 5000) {
      const refused = await orders.verifier.verify(current).then(
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
    return estate;
  } catch (err) {
    await estate.stop();
    throw err;
  }
}
