import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { auditEvents, basicAuth, opensslSelfSigned, startTestIdp, type TestIdp } from '@latchkey/testkit';

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
const SSF = 'https://schemas.openid.net/secevent/ssf/event-type/';
const PUSH = 'urn:ietf:rfc:8935';
const POLL = 'urn:ietf:rfc:8936';
const WANTED = [`${CAEP}session-revoked`, `${RISC}account-disabled`, `${CAEP}credential-change`, `${SSF}verification`];

/** A receiver's HTTPS endpoint on loopback (RFC 8935): records each SET; `answer` decides the reply. */
class Receiver {
  readonly received: { auth: string | undefined; type: string | undefined; set: string }[] = [];
  answer: () => { status: number; body?: object } = () => ({ status: 202 });
  private server!: Server;
  url = '';
  async start(key: string, cert: string): Promise<void> {
    this.server = createServer({ key, cert }, (req, res) => {
      let body = '';
      req
        .on('data', (c) => (body += c))
        .on('end', () => {
          const a = this.answer();
          if (a.status < 300)
            this.received.push({ auth: req.headers.authorization, type: req.headers['content-type'], set: body });
          res
            .writeHead(a.status, { 'content-type': 'application/json' })
            .end(a.body ? JSON.stringify(a.body) : undefined);
        });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`;
  }
  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

const waitFor = async <T>(what: string, get: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> => {
  const t0 = Date.now();
  for (;;) {
    const v = await get();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

/**
 * OpenID Shared Signals Framework 1.0 transmitter, with receivers over push (RFC 8935, an HTTPS
 * server on loopback) and poll (RFC 8936), each SET verified by jose against the IdP's JWKS.
 */
describe('Shared Signals transmitter', () => {
  let t: TestIdp;
  let dir: string;
  let receiver: Receiver;
  let failing: Receiver;
  let jwks: ReturnType<typeof jose.createLocalJWKSet>;
  let pushClient: Record<string, string>;
  let pollClient: Record<string, string>;
  const json = async (res: Response) => {
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const as = (c: Record<string, string>) => ({ authorization: basicAuth(c) });
  const call = (c: Record<string, string>, method: string, path: string, body?: unknown) =>
    t
      .fetch(`${t.issuer}${path}`, {
        method,
        headers: { ...as(c), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      .then(json);
  /** A SET checked as a receiver must (SSF §4.1, RFC 8417): signature, typ, iss, aud, no sub, no exp. */
  const verifySet = async (set: string, aud: string) => {
    const { payload, protectedHeader } = await jose.jwtVerify(set, jwks, {
      issuer: t.issuer,
      audience: aud,
      typ: 'secevent+jwt',
    });
    assert.equal(payload.sub, undefined);
    assert.equal(payload.exp, undefined);
    assert.equal(typeof payload.jti, 'string');
    assert.ok(protectedHeader.kid);
    const events = payload.events as Record<string, Record<string, unknown>>;
    assert.equal(Object.keys(events).length, 1);
    const type = Object.keys(events)[0] as string;
    return { type, event: events[type] as Record<string, unknown>, payload };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-ssf-'));
    const { key, cert, certFile } = await opensslSelfSigned(dir, 'receiver', '/CN=receiver', [
      'subjectAltName=IP:127.0.0.1',
    ]);
    receiver = new Receiver();
    await receiver.start(key, cert);
    failing = new Receiver();
    await failing.start(key, cert);
    t = await startTestIdp({
      config: {
        outboundCaFile: certFile,
        outboundAllow: ['127.0.0.1'],
        ssfPushAttempts: 2,
        ssfRetryBase: 1,
        ssfMinVerificationInterval: 0,
      },
    });
    jwks = jose.createLocalJWKSet(await (await t.fetch(`${t.issuer}/jwks`)).json());
    pushClient = (await t.register({
      client_id: 'siem-push',
      audiences: ['https://siem.internal'],
      scope: 'ssf',
    })) as Record<string, string>;
    pollClient = (await t.register({
      client_id: 'siem-poll',
      audiences: ['https://siem.internal'],
      scope: 'ssf',
    })) as Record<string, string>;
  });
  after(async () => {
    await t?.close();
    await receiver?.close();
    await failing?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the transmitter configuration (SSF §7) names every endpoint, over https', async () => {
    const res = await t.fetch(`${t.issuer}/.well-known/ssf-configuration`);
    assert.equal(res.status, 200);
    const m = (await res.json()) as Record<string, unknown>;
    assert.equal(m.issuer, t.issuer);
    assert.equal(m.spec_version, '1_0');
    assert.equal(m.jwks_uri, `${t.issuer}/jwks`);
    assert.deepEqual(m.delivery_methods_supported, [PUSH, POLL]);
    for (const e of [
      'configuration_endpoint',
      'status_endpoint',
      'add_subject_endpoint',
      'remove_subject_endpoint',
      'verification_endpoint',
    ])
      assert.match(String(m[e]), new RegExp(`^${t.issuer.replace(/\./g, '\\.')}/ssf/`), e);
    assert.deepEqual(m.authorization_schemes, [{ spec_urn: 'urn:ietf:rfc:6749' }]);
  });

  test('push and poll receivers get a session revocation, a client disable and a credential change, in order, once each', async () => {
    // A push stream (RFC 8935) with the receiver's own Authorization, and a poll stream (no delivery: poll).
    const created = await call(pushClient, 'POST', '/ssf/stream', {
      delivery: { method: PUSH, endpoint_url: receiver.url, authorization_header: 'Bearer receiver-secret' },
      events_requested: WANTED,
      description: 'SIEM',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const push = created.body;
    assert.equal(push.iss, t.issuer);
    assert.equal(push.aud, 'siem-push');
    assert.deepEqual([...push.events_delivered].sort(), [...WANTED].sort());
    assert.deepEqual(
      push.delivery,
      { method: PUSH, endpoint_url: receiver.url },
      'the authorization header is never echoed',
    );
    const polled = await call(pollClient, 'POST', '/ssf/stream', { events_requested: WANTED });
    assert.equal(polled.status, 201);
    const poll = polled.body;
    assert.deepEqual(poll.delivery, { method: POLL, endpoint_url: `${t.issuer}/ssf/poll/${poll.stream_id}` });

    // The verification event (SSF §8.1.4) with the receiver's state, on each stream.
    assert.equal(
      (await call(pushClient, 'POST', '/ssf/verify', { stream_id: push.stream_id, state: 'xyz-1' })).status,
      204,
    );
    await waitFor('verification pushed', () => receiver.received.length >= 1 || undefined);
    const v = await verifySet(receiver.received[0]!.set, 'siem-push');
    assert.equal(v.type, `${SSF}verification`);
    assert.deepEqual(v.event, { state: 'xyz-1' });
    assert.deepEqual(v.payload.sub_id, { format: 'opaque', id: push.stream_id });
    assert.equal(receiver.received[0]!.auth, 'Bearer receiver-secret');
    assert.equal(receiver.received[0]!.type, 'application/secevent+jwt');

    // Three changes at the IdP: a user's tokens revoked, a client revoked, the user's password set.
    const user = await json(
      await t.admin('/admin/users', { username: 'alice', password: 'correct horse battery staple 7' }),
    );
    assert.equal(user.status, 201, JSON.stringify(user.body));
    const sub = user.body.sub as string;
    const victim = await t.register({ client_id: 'leaky-service', audiences: ['https://x.internal'] });
    assert.equal((await t.admin(`/admin/subjects/${encodeURIComponent(sub)}/revoke`)).status, 200);
    assert.equal((await t.admin(`/admin/clients/${victim.client_id}/revoke`, {})).status, 200);
    assert.equal(
      (await t.admin(`/admin/users/${sub}/password`, { password: 'another long passphrase 8' })).status,
      200,
    );

    const expected = [
      [`${CAEP}session-revoked`, { format: 'iss_sub', iss: t.issuer, sub }],
      [`${RISC}account-disabled`, { format: 'iss_sub', iss: t.issuer, sub: 'leaky-service' }],
      [`${CAEP}credential-change`, { format: 'iss_sub', iss: t.issuer, sub }],
    ] as const;
    // Push: in order, once each (and nothing more after a while).
    await waitFor('three SETs pushed', () => receiver.received.length >= 4 || undefined);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(receiver.received.length, 4, 'once each');
    const pushed = await Promise.all(receiver.received.slice(1).map((r) => verifySet(r.set, 'siem-push')));
    assert.deepEqual(
      pushed.map((p) => [p.type, p.payload.sub_id]),
      expected.map(([type, subject]) => [type, subject]),
    );
    assert.equal(pushed[2]!.event.credential_type, 'password');
    assert.equal(pushed[2]!.event.change_type, 'update');
    assert.equal(pushed[0]!.event.initiating_entity, 'admin');
    assert.equal(new Set(pushed.map((p) => p.payload.jti)).size, 3);

    // Poll: the same three, in order; a poll that does not acknowledge gets them again; acknowledged, they are gone.
    const first = await call(pollClient, 'POST', `/ssf/poll/${poll.stream_id}`, { returnImmediately: true });
    assert.equal(first.status, 200);
    const sets = Object.entries(first.body.sets as Record<string, string>);
    assert.equal(sets.length, 3);
    assert.equal(first.body.moreAvailable, false);
    const got = await Promise.all(sets.map(([, set]) => verifySet(set, 'siem-poll')));
    assert.deepEqual(
      got.map((p) => [p.type, p.payload.sub_id]),
      expected.map(([type, subject]) => [type, subject]),
    );
    for (const [jti, set] of sets) assert.equal(jose.decodeJwt(set).jti, jti, 'sets are keyed by jti (RFC 8936 §2.2)');
    const again = await call(pollClient, 'POST', `/ssf/poll/${poll.stream_id}`, {
      returnImmediately: true,
      maxEvents: 2,
    });
    assert.deepEqual(
      Object.keys(again.body.sets),
      sets.slice(0, 2).map(([j]) => j),
    );
    assert.equal(again.body.moreAvailable, true);
    const acked = await call(pollClient, 'POST', `/ssf/poll/${poll.stream_id}`, {
      returnImmediately: true,
      ack: sets.map(([jti]) => jti),
    });
    assert.deepEqual(acked.body, { sets: {}, moreAvailable: false });

    // A long poll (no returnImmediately) is answered as soon as a SET is queued.
    const t0 = Date.now();
    const waiting = call(pollClient, 'POST', `/ssf/poll/${poll.stream_id}`, {});
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await t.admin(`/admin/subjects/${encodeURIComponent(sub)}/revoke`)).status, 200);
    const late = await waiting;
    assert.equal(Object.keys(late.body.sets).length, 1);
    assert.ok(Date.now() - t0 < 5000);
    await call(pollClient, 'POST', `/ssf/poll/${poll.stream_id}`, {
      returnImmediately: true,
      ack: Object.keys(late.body.sets),
    });

    // A subject the receiver removed is no longer reported (SSF §8.1.3.3); added back, it is.
    const subject = { format: 'iss_sub', iss: t.issuer, sub };
    assert.equal(
      (await call(pollClient, 'POST', '/ssf/subjects/remove', { stream_id: poll.stream_id, subject })).status,
      204,
    );
    assert.equal((await t.admin(`/admin/subjects/${encodeURIComponent(sub)}/revoke`)).status, 200);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(
      (await call(pollClient, 'POST', `/ssf/poll/${poll.stream_id}`, { returnImmediately: true })).body.sets,
      {},
    );
    assert.equal(
      (await call(pollClient, 'POST', '/ssf/subjects/add', { stream_id: poll.stream_id, subject })).status,
      200,
    );
  });

  test('a failing receiver is retried, then its stream paused and the failure reported; enabled again, nothing is lost', async () => {
    failing.answer = () => ({ status: 503 });
    const created = await call(pushClient, 'POST', '/ssf/stream', {
      delivery: { method: PUSH, endpoint_url: failing.url },
      events_requested: WANTED,
    });
    const id = created.body.stream_id as string;
    assert.equal((await call(pushClient, 'POST', '/ssf/verify', { stream_id: id, state: 'held' })).status, 204);
    // Two attempts (ssfPushAttempts 2, a second apart), then paused with the reason.
    const status = await waitFor('paused', async () => {
      const s = await call(pushClient, 'GET', `/ssf/status?stream_id=${id}`);
      return s.body.status === 'paused' ? s.body : undefined;
    });
    assert.match(status.reason, /delivery failed 2 times: HTTP 503/);
    const reported = await waitFor('reported', async () =>
      (await auditEvents(t.idp.storage, { type: 'ssf.delivery_failed' })).find((e) => e.detail?.stream_id === id),
    );
    assert.equal(reported.client_id, 'siem-push');
    assert.equal(reported.detail?.paused, true);
    assert.equal(reported.detail?.attempts, 2);

    // The receiver recovers and enables its stream: the held verification, then the stream-updated event.
    failing.answer = () => ({ status: 202 });
    assert.equal((await call(pushClient, 'POST', '/ssf/status', { stream_id: id, status: 'enabled' })).status, 200);
    await waitFor('delivered after enabling', () => failing.received.length >= 2 || undefined);
    const [held, updated] = await Promise.all(failing.received.map((r) => verifySet(r.set, 'siem-push')));
    assert.equal(held!.type, `${SSF}verification`);
    assert.deepEqual(held!.event, { state: 'held' });
    assert.equal(updated!.type, `${SSF}stream-updated`);
    assert.equal(updated!.event.status, 'paused');

    // A SET the receiver refuses (RFC 8935 §2.3, 400 with `err`) is dropped and reported, not retried.
    failing.answer = () => ({ status: 400, body: { err: 'invalid_audience', description: 'not for us' } });
    assert.equal((await call(pushClient, 'POST', '/ssf/verify', { stream_id: id })).status, 204);
    const refused = await waitFor('refusal reported', async () =>
      (await auditEvents(t.idp.storage, { type: 'ssf.delivery_failed' })).find((e) => e.detail?.refused === true),
    );
    assert.equal(refused.reason, 'invalid_audience');
    assert.equal((await call(pushClient, 'GET', `/ssf/status?stream_id=${id}`)).body.status, 'enabled');
    assert.equal((await call(pushClient, 'DELETE', `/ssf/stream?stream_id=${id}`)).status, 204);
  });

  test('stream management: own streams only, receivers only, transmitter members fixed, bad input 400, verification rate', async () => {
    const s = (await call(pollClient, 'POST', '/ssf/stream', { events_requested: [`${RISC}account-disabled`] })).body;
    // Read one, and all of the receiver's.
    assert.equal((await call(pollClient, 'GET', `/ssf/stream?stream_id=${s.stream_id}`)).body.stream_id, s.stream_id);
    assert.ok(
      (await call(pollClient, 'GET', '/ssf/stream')).body.some(
        (x: { stream_id: string }) => x.stream_id === s.stream_id,
      ),
    );
    // Another receiver sees nothing of it.
    assert.equal((await call(pushClient, 'GET', `/ssf/stream?stream_id=${s.stream_id}`)).status, 404);
    assert.equal((await call(pushClient, 'DELETE', `/ssf/stream?stream_id=${s.stream_id}`)).status, 404);
    // A client without the ssf scope is no receiver.
    const plain = (await t.register({ audiences: ['https://x.internal'] })) as Record<string, string>;
    const denied = await call(plain, 'POST', '/ssf/stream', {});
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error, 'access_denied');
    assert.equal((await t.fetch(`${t.issuer}/ssf/stream`)).status, 401);
    // PATCH changes what it names; transmitter-supplied members must match.
    const patched = await call(pollClient, 'PATCH', '/ssf/stream', { stream_id: s.stream_id, description: 'renamed' });
    assert.equal(patched.body.description, 'renamed');
    assert.deepEqual(patched.body.events_requested, [`${RISC}account-disabled`]);
    assert.equal(
      (await call(pollClient, 'PATCH', '/ssf/stream', { stream_id: s.stream_id, iss: 'https://evil' })).status,
      400,
    );
    // PUT replaces: events_requested back to the default (every event type).
    const replaced = await call(pollClient, 'PUT', '/ssf/stream', { stream_id: s.stream_id });
    assert.ok(replaced.body.events_delivered.includes(`${CAEP}session-revoked`));
    assert.equal(replaced.body.description, undefined);
    // Bad input.
    for (const body of [
      { delivery: { method: 'urn:example:carrier-pigeon' } },
      { delivery: { method: PUSH } },
      { delivery: { method: PUSH, endpoint_url: 'http://127.0.0.1:1/plain' } },
      { delivery: { method: PUSH, endpoint_url: 'https://10.0.0.1/private' } },
      { events_requested: 'all' },
    ]) {
      const r = await call(pollClient, 'POST', '/ssf/stream', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error, 'invalid_request');
    }
    assert.equal(
      (await call(pollClient, 'POST', '/ssf/status', { stream_id: s.stream_id, status: 'sleeping' })).status,
      400,
    );
    assert.equal(
      (await call(pollClient, 'POST', '/ssf/subjects/add', { stream_id: s.stream_id, subject: 'alice' })).status,
      400,
    );
    const badPoll = await call(pollClient, 'POST', `/ssf/poll/${s.stream_id}`, { maxEvents: -1 });
    assert.equal(badPoll.status, 400);
    assert.equal((await call(pollClient, 'DELETE', `/ssf/stream?stream_id=${s.stream_id}`)).status, 204);
    assert.equal((await call(pollClient, 'GET', `/ssf/status?stream_id=${s.stream_id}`)).status, 404);
    // Every change is in the audit trail.
    const types = (await auditEvents(t.idp.storage))
      .filter((e) => e.subject === `stream:${s.stream_id}`)
      .map((e) => e.type);
    assert.deepEqual(types, ['ssf.stream_created', 'ssf.stream_updated', 'ssf.stream_updated', 'ssf.stream_deleted']);
  });

  test('verification requests faster than min_verification_interval get 429 with Retry-After', async () => {
    const t2 = await startTestIdp({ config: { ssfMinVerificationInterval: 30 } });
    try {
      const c = (await t2.register({ audiences: ['https://siem.internal'], scope: 'ssf' })) as Record<string, string>;
      const post = (path: string, body: unknown) =>
        t2.fetch(`${t2.issuer}${path}`, {
          method: 'POST',
          headers: { authorization: basicAuth(c), 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      const s = await (await post('/ssf/stream', {})).json();
      assert.equal(s.min_verification_interval, 30);
      assert.equal((await post('/ssf/verify', { stream_id: s.stream_id })).status, 204);
      const again = await post('/ssf/verify', { stream_id: s.stream_id });
      assert.equal(again.status, 429);
      assert.ok(Number(again.headers.get('retry-after')) > 0);
    } finally {
      await t2.close();
    }
  });
});
