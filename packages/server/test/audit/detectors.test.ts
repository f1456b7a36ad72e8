import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import * as jose from 'jose';
import { createAuditQueue } from '@latchkey/sdk/audit';
import { createVerifier } from '@latchkey/sdk/verify';
import { auditEvents, basicAuth, FakeClock, startTestIdp, type TestIdp, workloadCsr } from '@latchkey/testkit';
import { openSse } from '../feeds/sse_reader.ts';

const AUD = 'https://orders.internal';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const SECRET = 'w'.repeat(40);

interface Alert {
  id: number;
  detector: string;
  key: string;
  summary: string;
  count: number;
  response: string | null;
  detail: Record<string, unknown>;
}

/** Runs a detection pass over everything committed so far, then lists the alerts. */
async function alerts(t: TestIdp): Promise<Alert[]> {
  await t.idp.detection.pass();
  const res = await t.fetch(`${t.issuer}/admin/alerts?limit=1000`, {
    headers: { authorization: `Bearer ${t.adminToken}` },
  });
  assert.equal(res.status, 200);
  return ((await res.json()) as { alerts: Alert[] }).alerts;
}

const token = (t: TestIdp, id: string, secret: string, extra: Record<string, string> = {}) =>
  t.post('/token', { grant_type: 'client_credentials', ...extra }, { authorization: basicAuth(id, secret) });

/** An IdP with small thresholds; each test gets its own, so loopback failures do not add up across tests. */
const idp = (config: Record<string, unknown> = {}, clock?: FakeClock) =>
  startTestIdp({
    ...(clock ? { clock } : {}),
    config: {
      detectAuthFailures: 6,
      detectAuthWindow: 60,
      detectDenials: 6,
      detectDenialWindow: 60,
      authFailureLimit: 1000,
      ...config,
    },
  });

describe('detectors: each fires on an attack and stays quiet on benign load', () => {
  test('failed_auth_burst: quiet for a client that mistypes now and then; fires for brute force and locks the client when configured', async () => {
    const t = await idp({ alertLock: 'failed_auth_burst', alertLockSeconds: 600 });
    try {
      const c = await t.register({ audiences: [AUD] });
      // Benign: 40 good requests, with a wrong secret now and then (a rotation in progress).
      for (let i = 0; i < 40; i++)
        assert.equal(
          (await token(t, c.client_id, i % 10 === 9 ? 'old-secret' : c.client_secret)).status,
          i % 10 === 9 ? 401 : 200,
        );
      assert.deepEqual(await alerts(t), []);

      // Attack: a burst of wrong secrets.
      for (let i = 0; i < 6; i++) await token(t, c.client_id, `guess-${i}`);
      const found = await alerts(t);
      const byClient = found.find((a) => a.key === `client:${c.client_id}`);
      assert.ok(byClient, JSON.stringify(found));
      assert.equal(byClient.detector, 'failed_auth_burst');
      assert.match(byClient.response!, new RegExp(`^locked client ${c.client_id} until `));
      // The response: even the right secret is refused while the lock lasts; the lock is audited.
      const locked = await token(t, c.client_id, c.client_secret);
      assert.equal(locked.status, 401);
      assert.equal(locked.body.error, 'invalid_client');
      const shown = (await (
        await t.fetch(`${t.issuer}/admin/clients/${c.client_id}`, {
          headers: { authorization: `Bearer ${t.adminToken}` },
        })
      ).json()) as { locked_until: string | null };
      assert.ok(shown.locked_until && Date.parse(shown.locked_until) > Date.now() + 500_000);
      const unlock = await t.fetch(`${t.issuer}/admin/clients/${c.client_id}/unlock`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.adminToken}` },
      });
      assert.equal(unlock.status, 200);
      assert.equal((await token(t, c.client_id, c.client_secret)).status, 200);
      const log = await auditEvents(t.idp.storage, { limit: 10_000 });
      assert.equal(log.filter((e) => e.type === 'client.locked' && e.subject === c.client_id).length, 1);
      assert.equal(log.filter((e) => e.type === 'client.unlocked' && e.subject === c.client_id).length, 1);
      assert.ok(log.some((e) => e.type === 'client.auth_failed' && e.reason === 'client_locked'));
      assert.ok(log.some((e) => e.type === 'alert.raised' && e.reason === 'failed_auth_burst'));
      // Within the cooldown the same burst does not raise a second alert.
      for (let i = 0; i < 6; i++) await token(t, c.client_id, `again-${i}`);
      assert.equal((await alerts(t)).filter((a) => a.key === `client:${c.client_id}`).length, 1);
    } finally {
      await t.close();
    }
  });

  test('failed_auth_burst: credential stuffing from one address across many client ids', async () => {
    const t = await idp();
    try {
      for (let i = 0; i < 6; i++) await token(t, `victim-${i}`, 'password1');
      const a = (await alerts(t)).find((x) => x.key === 'ip:127.0.0.1');
      assert.ok(a);
      assert.equal((a.detail.client_ids as string[]).length, 6);
    } finally {
      await t.close();
    }
  });

  test('issuance_spike: quiet for a steady client, fires when one client suddenly takes far more tokens than its baseline', async () => {
    const clock = new FakeClock();
    const t = await idp({ detectIssuanceWindow: 1, detectIssuanceFactor: 5, detectIssuanceMin: 20 }, clock);
    try {
      const c = await t.register({ audiences: [AUD] });
      // Benign: 8 tokens a second for 3 seconds (of the IdP's clock, which events are timed by).
      for (let s = 0; s < 3; s++) {
        for (let i = 0; i < 8; i++) assert.equal((await token(t, c.client_id, c.client_secret)).status, 200);
        clock.advance(1000);
      }
      assert.deepEqual(await alerts(t), []);
      // Attack: 200 tokens at once, 16 at a time.
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let i = 0; i < 200 / 16; i++) await token(t, c.client_id, c.client_secret);
        }),
      );
      const found = await alerts(t);
      assert.equal(found.length, 1, JSON.stringify(found));
      assert.equal(found[0]!.detector, 'issuance_spike');
      assert.equal(found[0]!.key, `client:${c.client_id}`);
    } finally {
      await t.close();
    }
  });

  test('denied_decisions_burst: decisions reported through the SDK queue; quiet for normal denials, fires when one principal is denied again and again', async () => {
    const t = await idp();
    try {
      const svc = await t.register({ audiences: [AUD] });
      const queue = createAuditQueue({
        issuer: t.issuer,
        credentials: { clientId: svc.client_id, clientSecret: svc.client_secret },
        fetch: t.fetch,
        flushInterval: 3600,
      });
      const decide = (actor: string, allowed: boolean, n: number) =>
        queue.record({
          type: 'authz.decision',
          outcome: allowed ? 'success' : 'failure',
          actor,
          target: `Order::"${n}"`,
          reason: allowed ? 'policy0' : 'no permit',
        });
      for (let i = 0; i < 50; i++) decide('Service::"checkout"', i % 20 !== 0, i); // 3 denials among 50
      await queue.flush();
      assert.deepEqual(await alerts(t), []);
      for (let i = 0; i < 6; i++) decide('Service::"intruder"', false, i);
      await queue.flush();
      const found = await alerts(t);
      assert.equal(found.length, 1);
      assert.equal(found[0]!.detector, 'denied_decisions_burst');
      assert.equal(found[0]!.key, 'actor:Service::"intruder"');
      await queue.close();
    } finally {
      await t.close();
    }
  });

  test('forged reports cannot lock another service (issue 11, finding 8): a response acts only on observed evidence or self-reports', async () => {
    const t = await idp({ alertLock: 'denied_decisions_burst', alertLockSeconds: 900 });
    try {
      const victim = await t.register({ client_id: 'victim', audiences: [AUD] });
      const attacker = await t.register({ client_id: 'attacker', audiences: [AUD] });
      const report = (reporter: Record<string, string>, n: number) =>
        t.fetch(`${t.issuer}/audit/events`, {
          method: 'POST',
          headers: {
            authorization: basicAuth(reporter.client_id!, reporter.client_secret!),
            'content-type': 'application/json',
          },
          body: JSON.stringify({
            events: Array.from({ length: n }, (_, i) => ({
              type: 'authz.decision',
              outcome: 'failure',
              actor: 'Service::"victim"',
              target: `Order::"${i}"`,
              reason: 'no permit',
            })),
          }),
        });
      assert.equal((await report(attacker, 25)).status, 202);
      const found = await alerts(t);
      assert.equal(found.length, 1, 'the burst is still an alert');
      assert.equal(found[0]!.response, null, "but no response: the evidence is another client's report");
      assert.deepEqual(found[0]!.detail.reported_by, ['attacker']);
      assert.equal((await token(t, 'victim', victim.client_secret)).status, 200, 'the victim is not locked');
      // The recorded events name the reporter as their source.
      const events = await auditEvents(t.idp.storage, { type: 'authz.decision', limit: 100 });
      assert.ok(events.length >= 25 && events.every((e) => e.client_id === 'attacker'));
      // A service's reports about its own identity may still lock it (cooldown key differs by nothing else: new IdP state).
      const self = await idp({ alertLock: 'denied_decisions_burst', alertLockSeconds: 900 });
      try {
        const svc = await self.register({ client_id: 'victim', audiences: [AUD] });
        const r = await self.fetch(`${self.issuer}/audit/events`, {
          method: 'POST',
          headers: { authorization: basicAuth('victim', svc.client_secret), 'content-type': 'application/json' },
          body: JSON.stringify({
            events: Array.from({ length: 6 }, () => ({
              type: 'authz.decision',
              outcome: 'failure',
              actor: 'Service::"victim"',
              reason: 'no permit',
            })),
          }),
        });
        assert.equal(r.status, 202);
        const own = await alerts(self);
        assert.match(own[0]!.response ?? '', /^locked client victim/);
        assert.equal((await token(self, 'victim', svc.client_secret)).status, 401);
      } finally {
        await self.close();
      }
    } finally {
      await t.close();
    }
  });

  test('revoked_credential_use: a revoked token at a service (SDK report) and at introspection, and a revoked client authenticating', async () => {
    const t = await idp();
    try {
      const svc = await t.register({ audiences: [AUD] });
      const caller = await t.register({ audiences: [AUD] });
      const queue = createAuditQueue({
        issuer: t.issuer,
        credentials: { clientId: svc.client_id, clientSecret: svc.client_secret },
        fetch: t.fetch,
        flushInterval: 3600,
      });
      const verifier = await createVerifier({
        issuer: t.issuer,
        audience: AUD,
        credentials: { clientId: svc.client_id, clientSecret: svc.client_secret },
        fetch: t.fetch,
        audit: queue,
      });
      try {
        // Benign: valid tokens verified and introspected.
        for (let i = 0; i < 10; i++) {
          const at = (await token(t, caller.client_id, caller.client_secret)).body.access_token as string;
          await verifier.verify(at);
          assert.equal(
            (await t.post('/introspect', { token: at }, { authorization: basicAuth(svc.client_id, svc.client_secret) }))
              .body.active,
            true,
          );
        }
        await queue.flush();
        assert.deepEqual(await alerts(t), []);

        const stolen = (await token(t, caller.client_id, caller.client_secret)).body.access_token as string;
        const { jti } = jose.decodeJwt(stolen);
        await t.post(
          '/revoke',
          { token: stolen },
          { authorization: basicAuth(caller.client_id, caller.client_secret) },
        );
        for (let i = 0; i < 100 && verifier.health().revocations.entries === 0; i++)
          await new Promise((r) => setTimeout(r, 20));
        await assert.rejects(verifier.verify(stolen), { code: 'token_revoked' });
        await queue.flush();
        let found = await alerts(t);
        assert.equal(found.length, 1, JSON.stringify(found));
        assert.equal(found[0]!.detector, 'revoked_credential_use');
        assert.equal(found[0]!.key, `token:${jti}`);
        assert.equal(found[0]!.detail.service, svc.client_id);
        assert.equal(verifier.health().audit!.dropped, 0);

        // At introspection: the same token is already in cooldown; a second revoked token is not.
        const other = (await token(t, caller.client_id, caller.client_secret)).body.access_token as string;
        await t.post('/revoke', { token: other }, { authorization: basicAuth(caller.client_id, caller.client_secret) });
        assert.equal(
          (
            await t.post(
              '/introspect',
              { token: other },
              { authorization: basicAuth(svc.client_id, svc.client_secret) },
            )
          ).body.active,
          false,
        );
        found = await alerts(t);
        assert.equal(found.length, 2);
        assert.equal(found[1]!.key, `token:${jose.decodeJwt(other).jti}`);

        // A revoked client that still has its secret.
        await t.fetch(`${t.issuer}/admin/clients/${caller.client_id}/revoke`, {
          method: 'POST',
          headers: { authorization: `Bearer ${t.adminToken}` },
        });
        assert.equal((await token(t, caller.client_id, caller.client_secret)).status, 401);
        found = await alerts(t);
        assert.equal(found.at(-1)!.key, `client:${caller.client_id}`);
        assert.equal(found.at(-1)!.detector, 'revoked_credential_use');
      } finally {
        verifier.close();
        await queue.close();
      }
    } finally {
      await t.close();
    }
  });

  test('assertion_replay: fresh assertions are quiet; a replayed one fires at once', async () => {
    const t = await idp({ alertLock: 'assertion_replay' });
    try {
      const { publicKey, privateKey } = await jose.generateKeyPair('ES256');
      const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
      const c = await t.register({
        audiences: [AUD],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [jwk] },
      });
      const assertion = () =>
        new jose.SignJWT({ jti: randomBytes(16).toString('base64url') })
          .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
          .setIssuer(c.client_id)
          .setSubject(c.client_id)
          .setAudience(t.issuer)
          .setIssuedAt()
          .setExpirationTime('60s')
          .sign(privateKey);
      const form = (a: string) => ({
        grant_type: 'client_credentials',
        client_assertion_type: ASSERTION_TYPE,
        client_assertion: a,
      });
      for (let i = 0; i < 10; i++) assert.equal((await t.post('/token', form(await assertion()))).status, 200);
      assert.deepEqual(await alerts(t), []);
      const captured = await assertion();
      assert.equal((await t.post('/token', form(captured))).status, 200);
      assert.equal((await t.post('/token', form(captured))).status, 401);
      const found = await alerts(t);
      assert.equal(found.length, 1);
      assert.equal(found[0]!.detector, 'assertion_replay');
      assert.match(found[0]!.response!, /^locked client /);
      assert.equal((await t.post('/token', form(await assertion()))).status, 401, 'the client is locked');
    } finally {
      await t.close();
    }
  });

  test('a lock takes back what the client holds (issue 11, findings 16 and 17): earlier tokens, certificate renewal, open feed streams', async () => {
    const t = await idp({ alertLock: 'identity_mismatch', alertLockSeconds: 900 });
    try {
      const a = await t.register({ audiences: [AUD], scope: 'workload' });
      const b = await t.register({ audiences: [AUD] });
      const idpToken = (await token(t, a.client_id, a.client_secret, { resource: t.issuer, scope: 'workload' })).body
        .access_token as string;
      const feed = (auth: string) => t.fetch(`${t.issuer}/feeds/revocations`, { headers: { authorization: auth } });
      assert.equal((await feed(`Bearer ${idpToken}`)).status, 200);
      const stream = await openSse(`${t.issuer}/feeds/stream?streams=revocations`, {
        ca: t.caPem,
        headers: { authorization: `Bearer ${idpToken}` },
      });
      const other = await openSse(`${t.issuer}/feeds/stream?streams=revocations`, {
        ca: t.caPem,
        headers: { authorization: basicAuth(b.client_id, b.client_secret) },
      });
      assert.equal(stream.status, 200);
      // a asks for a token as b: identity_mismatch, and the configured response locks a.
      assert.equal((await token(t, a.client_id, a.client_secret, { client_id: b.client_id })).status, 401);
      const found = await alerts(t);
      assert.match(found[0]!.response ?? '', new RegExp(`^locked client ${a.client_id}`));
      // Its open stream ends with the revocation entry; b's stays open.
      await stream.done;
      assert.equal(stream.ended(), true);
      assert.equal(other.ended(), false);
      // The token it held is refused at every IdP endpoint; a renewal with its secret is refused too.
      assert.equal((await feed(`Bearer ${idpToken}`)).status, 401);
      const { csrPem } = await workloadCsr();
      const renew = (auth: string) =>
        t.fetch(`${t.issuer}/workload/certificate`, {
          method: 'POST',
          headers: { authorization: auth, 'content-type': 'application/json' },
          body: JSON.stringify({ csr: csrPem }),
        });
      assert.equal((await renew(`Bearer ${idpToken}`)).status, 401);
      assert.equal((await renew(basicAuth(a.client_id, a.client_secret))).status, 401);
      await other.close();
    } finally {
      await t.close();
    }
  });

  test('identity_mismatch: a client naming itself is quiet; one asking to be another client fires', async () => {
    const t = await idp();
    try {
      const a = await t.register({ audiences: [AUD] });
      const b = await t.register({ audiences: [AUD] });
      for (let i = 0; i < 5; i++)
        assert.equal((await token(t, a.client_id, a.client_secret, { client_id: a.client_id })).status, 200);
      assert.deepEqual(await alerts(t), []);
      assert.equal((await token(t, a.client_id, a.client_secret, { client_id: b.client_id })).status, 401);
      const found = await alerts(t);
      assert.equal(found.length, 1);
      assert.equal(found[0]!.detector, 'identity_mismatch');
      assert.equal(found[0]!.key, `client:${a.client_id}`);
      assert.equal(found[0]!.detail.presented_client_id, b.client_id);
    } finally {
      await t.close();
    }
  });
});

describe('alert delivery', () => {
  test('webhooks get a signed body; 5xx are retried with backoff; a 4xx gives up and is audited', async () => {
    const clock = new FakeClock();
    const received: { at: number; body: string; signature: string; alertId: string }[] = [];
    let failFirst = 2;
    const read = (req: IncomingMessage) =>
      new Promise<string>((resolve) => {
        let b = '';
        req.on('data', (d) => (b += d));
        req.on('end', () => resolve(b));
      });
    const good = createServer(async (req, res) => {
      const body = await read(req);
      received.push({
        at: clock.now(),
        body,
        signature: String(req.headers['latchkey-signature']),
        alertId: String(req.headers['latchkey-alert-id']),
      });
      res.statusCode = failFirst-- > 0 ? 503 : 204;
      res.end();
    });
    const refusing = createServer(async (req, res) => {
      await read(req);
      res.statusCode = 410;
      res.end();
    });
    await new Promise<void>((r) => good.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    const url = (s: typeof good) => `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`;
    const t = await idp({ alertWebhooks: `${url(good)},${url(refusing)}`, alertWebhookSecret: SECRET }, clock);
    try {
      const c = await t.register({ audiences: [AUD] });
      await token(t, c.client_id, c.client_secret, { client_id: 'someone-else' });
      const [alert] = await alerts(t);
      assert.ok(alert);
      // The retries wait on the IdP's clock: advance it through the backoff, waiting only for each delivery.
      const delivered = async (n: number) => {
        const deadline = Date.now() + 10_000;
        while (received.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        assert.equal(received.length, n);
      };
      await delivered(1);
      clock.advance(999);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(received.length, 1, 'no retry before the backoff');
      clock.advance(1);
      await delivered(2);
      clock.advance(2000);
      await delivered(3);
      assert.equal(received.length, 3, 'two 503s, then accepted');
      assert.deepEqual(
        [received[1]!.at - received[0]!.at, received[2]!.at - received[1]!.at],
        [1000, 2000],
        'backoff of 1 s, then 2 s',
      );
      for (const r of received) {
        const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(r.signature);
        assert.ok(m, r.signature);
        assert.equal(createHmac('sha256', SECRET).update(`${m[1]}.${r.body}`).digest('hex'), m[2]);
        assert.equal(r.alertId, String(alert.id));
        assert.deepEqual(JSON.parse(r.body), { type: 'latchkey.alert', alert });
      }
      const failed = await auditEvents(t.idp.storage, { type: 'alert.delivery_failed' });
      assert.equal(failed.length, 1);
      assert.equal(failed[0]!.reason, 'HTTP 410');
      assert.equal(failed[0]!.detail!.url, url(refusing));
    } finally {
      await t.close();
      good.close();
      refusing.close();
    }
  });

  test('GET /admin/alerts: cursor, detector filter, bad parameters, admin only', async () => {
    const t = await idp();
    try {
      const c = await t.register({ audiences: [AUD] });
      await token(t, c.client_id, c.client_secret, { client_id: 'x1' });
      for (let i = 0; i < 6; i++) await token(t, c.client_id, 'nope');
      const all = await alerts(t);
      assert.ok(all.length >= 2);
      const get = (q: string, auth = `Bearer ${t.adminToken}`) =>
        t.fetch(`${t.issuer}/admin/alerts${q}`, { headers: { authorization: auth } });
      const page = (await (await get('?limit=1')).json()) as { alerts: Alert[]; cursor: string; has_more: boolean };
      assert.equal(page.alerts.length, 1);
      assert.equal(page.has_more, true);
      const next = (await (await get(`?after=${page.cursor}&limit=1000`)).json()) as { alerts: Alert[] };
      assert.deepEqual(next.alerts, all.slice(1));
      const only = (await (await get('?detector=identity_mismatch')).json()) as { alerts: Alert[] };
      assert.ok(only.alerts.length >= 1 && only.alerts.every((a) => a.detector === 'identity_mismatch'));
      for (const q of ['?limit=0', '?limit=abc', '?after=-1', '?limit=1&limit=2', '?detector=DROP%20TABLE'])
        assert.equal((await get(q)).status, 400, q);
      assert.equal((await get('', 'Bearer wrong')).status, 401);
    } finally {
      await t.close();
    }
  });
});
