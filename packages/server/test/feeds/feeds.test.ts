import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import * as jose from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { basicAuth, FakeClock, freePort, startTestIdp, type TestIdp } from '@latchkey/testkit';
import type { FeedPage, KeyEvent, RevocationEntry } from '@latchkey/protocol';
import { openSse } from './sse_reader.ts';

const AUD = 'https://orders.internal';
const basic = basicAuth;

async function issueAndRevoke(t: TestIdp, c: Record<string, string>, n: number): Promise<string[]> {
  const jtis: string[] = [];
  for (let i = 0; i < n; i++) {
    const token = (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(c) })).body
      .access_token as string;
    assert.equal((await t.post('/revoke', { token }, { authorization: basic(c) })).status, 200);
    jtis.push(jose.decodeJwt(token).jti as string);
  }
  return jtis;
}

describe('revocation and key feeds', () => {
  const clock = new FakeClock();
  let t: TestIdp;
  let c: Record<string, string>;
  const get = async (path: string, headers: Record<string, string> = { authorization: basic(c) }) => {
    const res = await t.fetch(`${t.issuer}${path}`, { headers });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
  before(async () => {
    t = await startTestIdp({ config: { feedMaxStreamsPerClient: 2, feedHeartbeat: 1 }, clock });
    c = (await t.register({ audiences: [AUD] })) as Record<string, string>;
  });
  after(() => t.close());

  test('snapshot, cursor paging and ETag', async () => {
    const jtis = await issueAndRevoke(t, c, 5);
    const snap = await get('/feeds/revocations');
    assert.equal(snap.status, 200);
    const page = snap.body as FeedPage<RevocationEntry>;
    assert.deepEqual(
      page.entries.filter((e) => e.kind === 'token').map((e) => e.ref),
      jtis,
    );
    assert.equal(page.has_more, false);
    for (const e of page.entries) {
      assert.equal(e.iss, t.issuer);
      assert.ok(e.expires_at > e.revoked_at);
    }
    const etag = snap.headers.get('etag')!;
    assert.equal(
      (await t.fetch(`${t.issuer}/feeds/revocations`, { headers: { authorization: basic(c), 'if-none-match': etag } }))
        .status,
      304,
    );

    // Paging: two at a time, every entry once, in order.
    const seen: string[] = [];
    let cursor = '0';
    for (;;) {
      const p = (await get(`/feeds/revocations?since=${cursor}&limit=2`)).body as FeedPage<RevocationEntry>;
      seen.push(...p.entries.map((e) => e.ref));
      cursor = p.cursor;
      if (!p.has_more) break;
    }
    assert.deepEqual(
      seen,
      page.entries.map((e) => e.ref),
    );
    const more = await issueAndRevoke(t, c, 1);
    const after = (await get(`/feeds/revocations?since=${page.cursor}`)).body as FeedPage<RevocationEntry>;
    assert.deepEqual(
      after.entries.map((e) => e.ref),
      more,
    );
    assert.notEqual(
      (await t.fetch(`${t.issuer}/feeds/revocations`, { headers: { authorization: basic(c), 'if-none-match': etag } }))
        .status,
      304,
    );
  });

  test("the keys feed carries the next key's JWK before it signs", async () => {
    const page = (await get('/feeds/keys')).body as FeedPage<KeyEvent>;
    const added = page.entries.filter((e) => e.type === 'key.added');
    assert.equal(added.length, 2, 'the first current key and its next key');
    const next = (await t.idp.storage.listKeys()).find((k) => k.state === 'next')!;
    const ev = added.find((e) => e.kid === next.kid)!;
    assert.deepEqual(ev.jwk, next.publicJwk);
    assert.ok(!('d' in ev.jwk!));
  });

  test('authentication: Basic or an own access token audienced to the IdP; bad cursors are 400', async () => {
    assert.equal((await get('/feeds/revocations', {})).status, 401);
    // A token for another service does not open the IdP's feeds (issue 11, finding 2): that service could replay it.
    const forService = (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(c) })).body
      .access_token as string;
    assert.equal((await get('/feeds/revocations', { authorization: `Bearer ${forService}` })).status, 401);
    const token = (
      await t.post('/token', { grant_type: 'client_credentials', resource: t.issuer }, { authorization: basic(c) })
    ).body.access_token as string;
    assert.equal((await get('/feeds/revocations', { authorization: `Bearer ${token}` })).status, 200);
    await t.post('/revoke', { token }, { authorization: basic(c) });
    assert.equal(
      (await get('/feeds/revocations', { authorization: `Bearer ${token}` })).status,
      401,
      'a revoked token does not open the feed',
    );
    assert.equal((await get('/feeds/revocations', { authorization: 'Bearer forged.token.here' })).status, 401);
    for (const q of ['since=-1', 'since=abc', 'limit=0', 'limit=100000', 'since=1&since=2']) {
      const r = await get(`/feeds/revocations?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.error, 'invalid_request');
    }
  });

  test('a Last-Event-ID that is not a cursor of this feed is refused (400 invalid_request), named in the error', async () => {
    const res = await t.fetch(`${t.issuer}/feeds/stream`, {
      headers: { authorization: basic(c), 'last-event-id': 'not-a-cursor' },
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: string; error_description: string };
    assert.equal(body.error, 'invalid_request');
    assert.match(body.error_description, /^headers\/last-event-id /);
  });

  test('stream: live entries, exactly once and in order across a dropped connection (Last-Event-ID)', async () => {
    const head = ((await get('/feeds/revocations')).body as FeedPage<RevocationEntry>).cursor;
    const url = `${t.issuer}/feeds/stream?streams=revocations&since=${head}`;
    const first = await openSse(url, { ca: t.caPem, headers: { authorization: basic(c) } });
    assert.equal(first.status, 200);
    assert.match(first.headers.get('content-type') ?? '', /^text\/event-stream/);
    const a = await issueAndRevoke(t, c, 3);
    const got1 = await first.waitFor(3);
    await first.close();
    const b = await issueAndRevoke(t, c, 3); // while disconnected
    const second = await openSse(`${t.issuer}/feeds/stream?streams=revocations`, {
      ca: t.caPem,
      headers: { authorization: basic(c), 'last-event-id': got1[2]!.id! },
    });
    const c3 = await issueAndRevoke(t, c, 1); // live again
    const got2 = await second.waitFor(4);
    await new Promise((r) => setTimeout(r, 300));
    await second.close();
    const all = [...got1, ...second.events];
    assert.deepEqual(
      all.map((e) => (JSON.parse(e.data) as RevocationEntry).ref),
      [...a, ...b, ...c3],
    );
    const ids = all.map((e) => Number(e.id));
    assert.deepEqual(
      ids,
      [...ids].sort((x, y) => x - y),
    );
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(got2.every((e) => e.event === 'revocation'));
  });

  test('stream: heartbeats, key events, and a per-client limit', async () => {
    const s1 = await openSse(`${t.issuer}/feeds/stream`, { ca: t.caPem, headers: { authorization: basic(c) } });
    const s2 = await openSse(`${t.issuer}/feeds/stream`, { ca: t.caPem, headers: { authorization: basic(c) } });
    const s3 = await openSse(`${t.issuer}/feeds/stream`, { ca: t.caPem, headers: { authorization: basic(c) } });
    assert.equal(s3.status, 429);
    await s3.close();
    await t.fetch(`${t.issuer}/admin/keys/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: '{"now":true}',
    });
    const evs = await s1.waitFor(3);
    assert.deepEqual(
      evs.map((e) => [e.event, (JSON.parse(e.data) as KeyEvent).type]),
      [
        ['key', 'key.activated'],
        ['key', 'key.retired'],
        ['key', 'key.added'],
      ],
    );
    await new Promise((r) => setTimeout(r, 1300));
    assert.ok(s1.comments.includes('keep-alive'));
    await s1.close();
    await s2.close();
    await new Promise((r) => setTimeout(r, 100));
    const s4 = await openSse(`${t.issuer}/feeds/stream`, { ca: t.caPem, headers: { authorization: basic(c) } });
    assert.equal(s4.status, 200, 'closed streams free their slots');
    await s4.close();
  });

  test('revoking a subject: its tokens issued until now are inactive; later ones are fine', async () => {
    const svc = (await t.register({ client_id: 'subject-svc', audiences: [AUD] })) as Record<string, string>;
    const before = (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(svc) })).body
      .access_token as string;
    const res = await t.fetch(`${t.issuer}/admin/subjects/subject-svc/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(res.status, 200);
    assert.equal((await t.post('/introspect', { token: before }, { authorization: basic(c) })).body.active, false);
    clock.advanceSeconds(1); // iat has one-second resolution
    const later = (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(svc) })).body
      .access_token as string;
    assert.equal((await t.post('/introspect', { token: later }, { authorization: basic(c) })).body.active, true);
    const entries = ((await get('/feeds/revocations')).body as FeedPage<RevocationEntry>).entries;
    assert.ok(entries.some((e) => e.kind === 'subject' && e.ref === 'subject-svc'));
  });

  test('revoking a client: disabled, its tokens inactive, a not-before entry on the feed', async () => {
    const victim = (await t.register({ audiences: [AUD] })) as Record<string, string>;
    const token = (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(victim) })).body
      .access_token as string;
    const res = await t.fetch(`${t.issuer}/admin/clients/${victim.client_id}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(res.status, 200);
    assert.equal((await t.post('/introspect', { token }, { authorization: basic(c) })).body.active, false);
    assert.equal(
      (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(victim) })).body.error,
      'invalid_client',
    );
    const entries = ((await get('/feeds/revocations')).body as FeedPage<RevocationEntry>).entries;
    const nb = entries.find((e) => e.kind === 'client' && e.ref === victim.client_id)!;
    assert.ok(nb.not_before! >= (jose.decodeJwt(token).iat as number));
  });
});

test('an EventSource client (the eventsource package) resumes after the IdP restarts', {
  timeout: 30_000,
}, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-feed-restart-'));
  const port = await freePort();
  let t = await startTestIdp({ dataDir, port });
  try {
    const c = (await t.register({ audiences: [AUD] })) as Record<string, string>;
    const dispatcher = new Agent({ connect: { ca: t.caPem! } });
    const head = (
      (await (
        await t.fetch(`${t.issuer}/feeds/revocations`, { headers: { authorization: basic(c) } })
      ).json()) as FeedPage<RevocationEntry>
    ).cursor;
    const received: string[] = [];
    const es = new EventSource(`${t.issuer}/feeds/stream?streams=revocations&since=${head}`, {
      fetch: (input, init) =>
        undiciFetch(
          input as string,
          {
            ...(init as object),
            headers: { ...(init?.headers as Record<string, string>), authorization: basic(c) },
            dispatcher,
          } as never,
        ) as never,
    });
    es.addEventListener('revocation', (e) =>
      received.push((JSON.parse((e as MessageEvent).data) as RevocationEntry).ref),
    );
    await new Promise<void>((r) => es.addEventListener('open', () => r(), { once: true }));
    const a = await issueAndRevoke(t, c, 2);
    const until = async (n: number) => {
      const deadline = Date.now() + 10_000;
      while (received.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    };
    await until(2);
    await t.close();
    t = await startTestIdp({ dataDir, port });
    const b = await issueAndRevoke(t, c, 2);
    await until(4);
    es.close();
    assert.deepEqual(received, [...a, ...b]);
  } finally {
    await t.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a consumer that stops reading is paused, then disconnected, never buffered without bound; others get every entry', {
  timeout: 60_000,
}, async () => {
  const { connect } = await import('node:tls');
  const t = await startTestIdp({ config: { feedStallTimeout: 2, feedHeartbeat: 1 } });
  try {
    const c = (await t.register({ audiences: [AUD] })) as Record<string, string>;
    const u = new URL(t.issuer);
    // The stalled consumer: sends its request, then never reads a byte.
    const stalled = connect({ host: u.hostname, port: Number(u.port), ca: t.caPem!, servername: 'localhost' });
    await new Promise<void>((r) => stalled.once('secureConnect', () => r()));
    stalled.write(
      `GET /feeds/stream?streams=revocations HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: ${basic(c)}\r\n\r\n`,
    );
    stalled.pause();
    const healthy = await openSse(`${t.issuer}/feeds/stream?streams=revocations`, {
      ca: t.caPem,
      headers: { authorization: basic(c) },
    });
    await new Promise((r) => setTimeout(r, 200));
    const hub = () => (t.idp.app as unknown as { feedHubSize?: () => number }).feedHubSize?.();
    assert.equal(hub(), 2);
    // Many entries at once, appended through the storage port as /revoke would.
    const now = Math.floor(Date.now() / 1000);
    const total = 30_000;
    for (let i = 0; i < total; i++) {
      await t.idp.storage.appendFeedEvent({
        stream: 'revocations',
        kind: 'token',
        iss: t.issuer,
        ref: `jti-${i}-${'x'.repeat(40)}`,
        notBefore: null,
        expiresAt: now + 600,
        createdAt: now,
        data: null,
      });
      // Let I/O run between bursts, as it does between real /revoke requests.
      if (i % 200 === 0) await new Promise((r) => setImmediate(r));
      // Twice, the IdP's own event loop is blocked for longer than the stall timeout (as a slow
      // disk or a long GC pause would do): that must not cost the healthy consumer its stream.
      if (i === 10_000 || i === 20_000) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500);
    }
    await healthy.waitFor(total, 50_000);
    const deadline = Date.now() + 5000;
    while (hub() !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(hub(), 1, 'the stalled consumer was dropped after its socket stayed full for 2 s');
    const refs = healthy.events.map((e) => JSON.parse(e.data).ref as string);
    assert.equal(refs.length, total);
    assert.equal(refs[total - 1], `jti-${total - 1}-${'x'.repeat(40)}`);
    await healthy.close();
    stalled.destroy();
  } finally {
    await t.close();
  }
});
