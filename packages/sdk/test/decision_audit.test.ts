import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AuditEvent } from '@latchkey/protocol';
import { type AuditQueue, createAuditQueue } from '@latchkey/sdk/audit';
import { type Authorizer, createAuthorizer } from '@latchkey/sdk/authorize';
import { auditEvents, startTestIdp, type TestIdp } from '@latchkey/testkit';

// Decision audit at fleet volume (issue 18): a busy service's every permission check accounted
// for — denies and @sensitive decisions each as an event, allows each up to a rate and counted
// per interval past it — and any loss the SDK could not avoid a counted gap in the chain.
const SCHEMA = `entity Role;
entity Service in [Role];
entity Doc;
action read, export, delete appliesTo { principal: [Service], resource: [Doc] };
`;
const POLICIES: Record<string, string> = {
  read: 'permit(principal in Role::"reader", action == Action::"read", resource);',
  export: '@sensitive\npermit(principal in Role::"reader", action == Action::"export", resource);',
  'no-delete': 'forbid(principal, action == Action::"delete", resource);',
};
const PRINCIPALS = 7;
const ENTITIES = [
  { uid: { type: 'Role', id: 'reader' }, attrs: {}, parents: [] },
  ...Array.from({ length: PRINCIPALS }, (_, i) => ({
    uid: { type: 'Service', id: `svc-${i}` },
    attrs: {},
    parents: [{ type: 'Role', id: 'reader' }],
  })),
];
/** Every tenth a delete (denied), every tenth an export (a sensitive allow), the rest reads (allows). */
const request = (i: number) => ({
  principal: `Service::"svc-${i % PRINCIPALS}"`,
  action: `Action::"${i % 10 === 0 ? 'delete' : i % 10 === 1 ? 'export' : 'read'}"`,
  resource: `Doc::"${i}"`,
});

/** What the trail holds about this service's decisions: individual events and counted ones. */
async function books(t: TestIdp, service: string) {
  await t.idp.audit.flush();
  const mine = (e: AuditEvent) => e.client_id === service;
  const own = (await auditEvents(t.idp.storage, { type: 'authz.decision', limit: 100_000 })).filter(mine);
  const counted = (await auditEvents(t.idp.storage, { type: 'authz.decisions', limit: 100_000 })).filter(mine);
  const gaps = (await auditEvents(t.idp.storage, { type: 'audit.gap', limit: 1000 })).filter(mine);
  const sum = (es: AuditEvent[], f: (e: AuditEvent) => boolean) =>
    es.filter(f).reduce((n, e) => n + ((e.detail?.count as number) ?? 1), 0);
  const action = (a: string) => (e: AuditEvent) => e.detail?.action === `Action::"${a}"`;
  return { own, counted, gaps, sum, action };
}

describe('decision audit at fleet volume', () => {
  let t: TestIdp;
  before(async () => {
    t = await startTestIdp();
    assert.equal(
      (
        await t.admin('/admin/policy', {
          schema: { 'docs.cedarschema': SCHEMA },
          policies: POLICIES,
          entities: ENTITIES,
        })
      ).status,
      201,
    );
  });
  after(async () => {
    await t.close();
  });

  async function service(name: string, queue: (creds: { clientId: string; clientSecret: string }) => AuditQueue) {
    const reg = await t.register({ client_id: name, audiences: ['https://docs.internal'] });
    const credentials = { clientId: reg.client_id, clientSecret: reg.client_secret };
    const audit = queue(credentials);
    const authz: Authorizer = await createAuthorizer({ issuer: t.issuer, credentials, fetch: t.fetch, audit });
    return { audit, authz };
  }

  test('a loop of 20,000 decisions: every one in the trail, individually or counted', async () => {
    const { audit, authz } = await service('busy', (credentials) =>
      createAuditQueue({ issuer: t.issuer, credentials, fetch: t.fetch, aggregateInterval: 1 }),
    );
    const N = 20_000;
    for (let i = 0; i < N; i++) authz.authorize(request(i));
    await audit.close();
    authz.close();
    assert.equal(audit.dropped, 0);
    const { own, counted, gaps, sum, action } = await books(t, 'busy');
    // Denies and sensitive decisions: each its own event, with the deciding policy.
    const denies = own.filter(action('delete'));
    assert.equal(denies.length, N / 10);
    assert.ok(denies.every((e) => e.outcome === 'failure' && (e.detail!.policies as string[])[0] === 'no-delete'));
    const exports = own.filter(action('export'));
    assert.equal(exports.length, N / 10);
    assert.ok(exports.every((e) => e.outcome === 'success' && e.detail!.sensitive === true));
    assert.equal(sum(counted, action('export')) + sum(counted, action('delete')), 0);
    // Allows: the first (a burst of allowRate, 100) individually, the rest counted — and all there.
    const reads = own.filter(action('read')).length;
    assert.ok(reads >= 100 && reads < N / 2, `${reads} reads individually`);
    assert.equal(reads + sum(counted, action('read')), (N * 8) / 10);
    assert.equal(
      audit.aggregated,
      sum(counted, () => true),
    );
    // Counted per principal, action, resource type and the policies that decided.
    const row = counted.find((e) => e.actor === 'Service::"svc-3"')!;
    assert.equal(row.outcome, 'success');
    assert.deepEqual(
      [row.detail!.action, row.detail!.resource_type, row.detail!.policies, row.detail!.why],
      ['Action::"read"', 'Doc', ['read'], 'rate'],
    );
    assert.ok(Date.parse(row.detail!.from as string) <= Date.parse(row.detail!.to as string));
    assert.equal(new Set(counted.map((e) => e.actor)).size, PRINCIPALS);
    assert.equal(gaps.length, 0);
    const chain = await (
      await t.fetch(`${t.issuer}/admin/audit/verify`, { headers: { authorization: `Bearer ${t.adminToken}` } })
    ).json();
    assert.equal((chain as { ok: boolean }).ok, true);
  });

  test('the IdP unreachable: decisions past the queue are counted, other events dropped and the gap recorded when it is back', async () => {
    let down = true;
    // A network fault on the path to the (real) IdP.
    const faulty: typeof fetch = (input, init) =>
      down ? Promise.reject(new TypeError('fetch failed')) : t.fetch(input as string, init);
    const { audit, authz } = await service('cut-off', (credentials) =>
      createAuditQueue({
        issuer: t.issuer,
        credentials,
        fetch: faulty,
        maxQueue: 100,
        allowRate: Number.POSITIVE_INFINITY,
        aggregateInterval: 1,
        flushInterval: 0.1,
      }),
    );
    const N = 5000;
    for (let i = 0; i < N; i++) assert.equal(authz.authorize(request(i)).decision === 'deny', i % 10 === 0);
    for (let i = 0; i < 30; i++)
      assert.equal(
        audit.record({ type: 'token.rejected', outcome: 'failure', actor: 'unknown', reason: 'token_expired' }),
        false,
      );
    assert.equal(audit.pending, 100);
    assert.equal(audit.dropped, 30);
    assert.equal(audit.aggregated, N - 100);
    down = false;
    await audit.close();
    authz.close();
    const { own, counted, gaps, sum } = await books(t, 'cut-off');
    assert.equal(own.length, 100);
    assert.equal(own.length + sum(counted, () => true), N);
    assert.ok(counted.every((e) => e.detail!.why === 'backlog'));
    assert.equal(
      sum(counted, (e) => e.outcome === 'failure') + own.filter((e) => e.outcome === 'failure').length,
      N / 10,
    );
    assert.deepEqual(
      gaps.map((g) => [g.actor, g.outcome, g.detail!.count]),
      [['cut-off', 'failure', 30]],
    );
  });

  test('counted rows are bounded: past maxAggregateRows further principals share an overflow row, and the total stays exact', async () => {
    const { audit, authz } = await service('wide', (credentials) =>
      createAuditQueue({ issuer: t.issuer, credentials, fetch: t.fetch, allowRate: 0, maxAggregateRows: 3 }),
    );
    for (let i = 0; i < 700; i++) authz.authorize({ ...request(i * 10 + 2), resource: `Doc::"${i}"` });
    await audit.close();
    authz.close();
    const { own, counted, sum } = await books(t, 'wide');
    assert.equal(own.length, 0);
    assert.equal(
      sum(counted, () => true),
      700,
    );
    assert.equal(counted.length, 4);
    const overflow = counted.find((e) => e.actor === '*')!;
    assert.deepEqual([overflow.detail!.action, overflow.detail!.resource_type], ['*', '*']);
  });
});
