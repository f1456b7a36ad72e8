import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createAuditQueue } from '@latchkey/sdk/audit';
import { freePort, startTestIdp, type TestIdp } from '@latchkey/testkit';

const decision = (i: number) => ({
  type: 'authz.decision' as const,
  outcome: (i % 2 ? 'success' : 'failure') as 'success' | 'failure',
  actor: `Service::"checkout"`,
  target: `Order::"${i}"`,
  reason: i % 2 ? 'permit' : 'no permit',
});
const adminGet = async (t: TestIdp, path: string) =>
  (await (await t.fetch(`${t.issuer}${path}`, { headers: { authorization: `Bearer ${t.adminToken}` } })).json()) as any;

test('decision events reach the audit log, recorded under the reporting client', async () => {
  const t = await startTestIdp();
  try {
    const svc = await t.register({ client_id: 'orders', audiences: ['https://x.internal'] });
    const q = createAuditQueue({
      issuer: t.issuer,
      credentials: { clientId: svc.client_id, clientSecret: svc.client_secret },
      fetch: t.fetch,
    });
    for (let i = 0; i < 3; i++) assert.equal(q.record(decision(i)), true);
    await q.flush();
    assert.equal(q.pending, 0);
    const events = (await adminGet(t, '/admin/audit?type=authz.decision')).events;
    assert.equal(events.length, 3);
    assert.deepEqual(
      events.map((e: any) => [e.client_id, e.actor, e.detail.service, e.detail.target, e.outcome]),
      [
        ['orders', 'Service::"checkout"', 'orders', 'Order::"0"', 'failure'],
        ['orders', 'Service::"checkout"', 'orders', 'Order::"1"', 'success'],
        ['orders', 'Service::"checkout"', 'orders', 'Order::"2"', 'failure'],
      ],
    );
    assert.equal((await adminGet(t, '/admin/audit/verify')).ok, true);
    await q.close();
  } finally {
    await t.close();
  }
});

test('POST /audit/events refuses unauthenticated, malformed and oversized batches; escapes control characters', async () => {
  const t = await startTestIdp();
  try {
    const svc = await t.register({ audiences: ['https://x.internal'] });
    const auth = `Basic ${Buffer.from(`${svc.client_id}:${svc.client_secret}`).toString('base64')}`;
    const post = async (body: unknown, headers: Record<string, string> = { authorization: auth }) => {
      const res = await t.fetch(`${t.issuer}/audit/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    assert.equal((await post({ events: [decision(1)] }, {})).status, 401);
    for (const bad of [
      {},
      { events: [] },
      { events: [{ ...decision(1), type: 'token.issued' }] },
      { events: [{ ...decision(1), outcome: 'maybe' }] },
      { events: [{ ...decision(1), client_id: 'spoofed' }] },
      { events: Array.from({ length: 501 }, (_, i) => decision(i)) },
      { events: [{ ...decision(1), detail: { big: 'x'.repeat(5000) } }] },
    ]) {
      const r = await post(bad);
      assert.equal(r.status, 400, JSON.stringify(bad).slice(0, 80));
      assert.equal(r.body.error, 'invalid_request');
    }
    assert.equal((await post({ events: [{ ...decision(1), reason: 'x'.repeat(300_000) }] })).status, 413);
    const ok = await post({ events: [{ ...decision(1), actor: 'evil\nFAKE' }] });
    assert.equal(ok.status, 202);
    await t.idp.audit.flush();
    const [e] = (await adminGet(t, '/admin/audit?type=authz.decision')).events;
    assert.equal(e.actor, 'evil\\u000aFAKE');
    assert.equal(e.client_id, svc.client_id);
  } finally {
    await t.close();
  }
});

test('a stalled IdP: the queue drops events other than decisions past its bound and counts them, never blocks, delivers the rest when the IdP is back, and the count is a gap in the trail', {
  timeout: 30_000,
}, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-auditq-'));
  const port = await freePort();
  let t = await startTestIdp({ dataDir, port });
  try {
    const svc = await t.register({ client_id: 'orders', audiences: ['https://x.internal'] });
    const q = createAuditQueue({
      issuer: t.issuer,
      credentials: { clientId: svc.client_id, clientSecret: svc.client_secret },
      fetch: t.fetch,
      maxQueue: 50,
      flushInterval: 0.2,
    });
    await t.close();
    const t0 = performance.now();
    // Decisions are never dropped (docs/audit.md: counted past the bound); rejected tokens are.
    const rejected = (i: number) => ({
      type: 'token.rejected' as const,
      outcome: 'failure' as const,
      actor: 'unknown',
      reason: 'token_expired',
      detail: { jti: `j${i}` },
    });
    const accepted = Array.from({ length: 55 }, (_, i) => q.record(rejected(i)));
    assert.ok(performance.now() - t0 < 50, 'recording never waits on the network');
    assert.equal(accepted.filter(Boolean).length, 50);
    assert.equal(q.dropped, 5);
    await q.flush(); // fails quietly, keeps the events
    assert.equal(q.pending, 50);
    t = await startTestIdp({ dataDir, port });
    const deadline = Date.now() + 10_000;
    while (q.pending > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(q.pending, 0);
    await t.idp.audit.flush();
    assert.equal((await adminGet(t, '/admin/audit?type=token.rejected&limit=1000')).events.length, 50);
    const gaps = (await adminGet(t, '/admin/audit?type=audit.gap')).events;
    assert.deepEqual(
      gaps.map((g: any) => [g.actor, g.detail.count]),
      [['orders', 5]],
    );
    // The drops reached the IdP with the first batch after it came back: a metric per service.
    const metrics = await (
      await t.fetch(`${t.issuer}/metrics`, { headers: { authorization: `Bearer ${t.adminToken}` } })
    ).text();
    assert.match(metrics, /^latchkey_audit_reported_dropped_total\{client_id="orders"\} 5$/m);
    assert.equal((await t.fetch(`${t.issuer}/metrics`)).status, 401, 'metrics need the admin bearer');
    await q.close();
  } finally {
    await t.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
