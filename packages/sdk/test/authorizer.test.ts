import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { createAuditQueue } from '@latchkey/sdk/audit';
import { createAuthorizer, type Authorizer, type AuthorizeRequest } from '@latchkey/sdk/authorize';
import { startTestIdp, type TestIdp, auditEvents } from '@latchkey/testkit';

const SCHEMA = `entity Role in [Role];
entity Group in [Group, Role];
entity Service in [Group, Role] { tenant: String, environment: String };
entity User in [Group, Role] { tenant: String };
namespace Orders {
  entity Order { owner: User, tenant: String };
  action read, cancel, refund appliesTo { principal: [Service, User], resource: Order, context: { hour: Long } };
}
`;
const POLICIES: Record<string, string> = {
  'billing-admins-refund':
    'permit(principal in Role::"billing-admin", action == Orders::Action::"refund", resource) when { principal.tenant == resource.tenant };',
  'owner-cancel':
    'permit(principal, action == Orders::Action::"cancel", resource) when { resource.owner == principal };',
  'readers-read':
    'permit(principal in Role::"reader", action == Orders::Action::"read", resource) when { principal.tenant == resource.tenant };',
  'business-hours':
    'forbid(principal, action == Orders::Action::"refund", resource) unless { context.hour >= 9 && context.hour < 17 };',
  'no-staging': 'forbid(principal is Service, action, resource) when { principal.environment == "staging" };',
};
const uid = (type: string, id: string) => ({ type, id });
const ENTITIES = [
  { uid: uid('Role', 'reader'), attrs: {}, parents: [] },
  { uid: uid('Role', 'billing-admin'), attrs: {}, parents: [] },
  { uid: uid('Group', 'finance'), attrs: {}, parents: [uid('Role', 'billing-admin')] },
  { uid: uid('User', 'alice'), attrs: { tenant: 'acme' }, parents: [uid('Group', 'finance')] },
  { uid: uid('User', 'bob'), attrs: { tenant: 'acme' }, parents: [] },
  { uid: uid('User', 'mallory'), attrs: { tenant: 'evil' }, parents: [uid('Group', 'finance')] },
  { uid: uid('Service', 'checkout'), attrs: { tenant: 'acme', environment: 'prod' }, parents: [uid('Role', 'reader')] },
  {
    uid: uid('Service', 'staging-checkout'),
    attrs: { tenant: 'acme', environment: 'staging' },
    parents: [uid('Role', 'reader')],
  },
];
const order = (id: string, owner = 'bob', tenant = 'acme') => ({
  type: 'Orders::Order',
  id,
  attrs: { owner: { __entity: uid('User', owner) }, tenant },
});
const claims = (sub: string, roles?: string[]) => ({
  iss: 'x',
  sub,
  client_id: sub,
  aud: 'a',
  exp: 2e9,
  iat: 1,
  jti: sub,
  ...(roles ? { roles } : {}),
});

const CASES: [string, AuthorizeRequest, 'allow' | 'deny', string[], boolean?][] = [
  [
    'role inherited through a group',
    { principal: 'User::"alice"', action: 'Orders::Action::"refund"', resource: order('1'), context: { hour: 10 } },
    'allow',
    ['billing-admins-refund'],
  ],
  [
    'forbid overrides permit (time window in context)',
    { principal: 'User::"alice"', action: 'Orders::Action::"refund"', resource: order('1'), context: { hour: 20 } },
    'deny',
    ['business-hours'],
  ],
  [
    'default deny',
    { principal: 'User::"bob"', action: 'Orders::Action::"refund"', resource: order('1'), context: { hour: 10 } },
    'deny',
    [],
  ],
  [
    'tenant isolation',
    { principal: 'User::"mallory"', action: 'Orders::Action::"refund"', resource: order('1'), context: { hour: 10 } },
    'deny',
    [],
  ],
  [
    'owner-only access by resource attribute',
    {
      principal: 'User::"bob"',
      action: 'Orders::Action::"cancel"',
      resource: order('2', 'bob'),
      context: { hour: 10 },
    },
    'allow',
    ['owner-cancel'],
  ],
  [
    'not the owner',
    {
      principal: 'User::"alice"',
      action: 'Orders::Action::"cancel"',
      resource: order('2', 'bob'),
      context: { hour: 10 },
    },
    'deny',
    [],
  ],
  [
    'a service from its token claims, RBAC + ABAC',
    { principal: claims('checkout'), action: 'Orders::Action::"read"', resource: order('3'), context: { hour: 3 } },
    'allow',
    ['readers-read'],
  ],
  [
    'environment attribute forbids',
    {
      principal: claims('staging-checkout'),
      action: 'Orders::Action::"read"',
      resource: order('3'),
      context: { hour: 3 },
    },
    'deny',
    ['no-staging'],
  ],
  [
    'an attribute missing: the policy errors and is skipped',
    {
      principal: claims('newcomer', ['reader']),
      action: 'Orders::Action::"read"',
      resource: order('3'),
      context: { hour: 3 },
    },
    'deny',
    [],
    true,
  ],
];

describe('SDK authorizer: Cedar bundle from the IdP, decided in-process', () => {
  let t: TestIdp;
  let svc: Record<string, any>;
  let authz: Authorizer;
  const admin = (path: string, method: string, body: unknown) =>
    t.fetch(`${t.issuer}${path}`, {
      method,
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  let queue: ReturnType<typeof createAuditQueue>;

  before(async () => {
    t = await startTestIdp();
    svc = await t.register({ client_id: 'orders', audiences: ['https://orders.internal'] });
    assert.equal(
      (
        await admin('/admin/policy', 'POST', {
          schema: { 'schema.cedarschema': SCHEMA },
          policies: POLICIES,
          entities: ENTITIES,
        })
      ).status,
      201,
    );
    queue = createAuditQueue({
      issuer: t.issuer,
      credentials: { clientId: svc.client_id, clientSecret: svc.client_secret },
      fetch: t.fetch,
      flushInterval: 3600,
    });
    authz = await createAuthorizer({
      issuer: t.issuer,
      credentials: { clientId: svc.client_id, clientSecret: svc.client_secret },
      fetch: t.fetch,
      audit: queue,
    });
  });
  after(async () => {
    authz.close();
    await queue.close().catch(() => undefined);
    await t.close();
  });

  test('RBAC and ABAC cases: decision and reasons, equal to cedar-wasm over all entities', () => {
    for (const [name, req, decision, reasons, hasErrors] of CASES) {
      const r = authz.authorize(req);
      assert.deepEqual([r.decision, r.reasons.sort()], [decision, reasons], name);
      assert.equal(r.errors.length > 0, Boolean(hasErrors), `${name}: ${r.errors.join('; ')}`);
      // The slice gives Cedar's own answer over the whole entity store.
      const res = typeof req.resource === 'object' && 'attrs' in req.resource ? req.resource : undefined;
      const principal =
        typeof req.principal === 'string'
          ? JSON.parse(`{"type":"${req.principal.split('::')[0]}","id":${req.principal.split('::')[1]}}`)
          : uid('Service', (req.principal as { sub: string }).sub);
      const extra =
        typeof req.principal === 'object' && 'roles' in req.principal
          ? [{ uid: principal, attrs: {}, parents: [uid('Role', 'reader')] }]
          : [];
      const naive = cedar.isAuthorized({
        principal,
        action: { type: 'Orders::Action', id: String(req.action).split('"')[1]! },
        resource: { type: res!.type, id: res!.id },
        context: req.context as cedar.Context,
        policies: { staticPolicies: POLICIES },
        entities: [
          ...ENTITIES,
          ...extra,
          {
            uid: { type: res!.type, id: res!.id },
            attrs: res!.attrs as Record<string, cedar.CedarValueJson>,
            parents: [],
          },
        ] as cedar.EntityJson[],
      });
      assert.equal(naive.type, 'success');
      if (naive.type === 'success')
        assert.deepEqual(
          [naive.response.decision, naive.response.diagnostics.reason.sort()],
          [decision, reasons],
          `${name} (cedar-wasm, all entities)`,
        );
    }
  });

  test('every decision goes to the audit log through the SDK queue', async () => {
    await queue.flush();
    const before = (await auditEvents(t.idp.storage, { type: 'authz.decision', limit: 1000 })).length;
    authz.authorize(CASES[0]![1]);
    authz.authorize(CASES[2]![1]);
    await queue.flush();
    const events = (await auditEvents(t.idp.storage, { type: 'authz.decision', limit: 1000 })).slice(before);
    assert.deepEqual(
      events.map((e) => [e.outcome, e.actor, e.reason, e.detail!.target, e.detail!.action]),
      [
        ['success', 'User::"alice"', 'billing-admins-refund', 'Orders::Order::"1"', 'Orders::Action::"refund"'],
        ['failure', 'User::"bob"', 'no permit', 'Orders::Order::"1"', 'Orders::Action::"refund"'],
      ],
    );
  });

  test('a pushed change reaches the running authorizer within a second; rollback restores the decisions; the IdP down → the last bundle keeps deciding', async () => {
    const read = CASES[6]![1];
    assert.equal(authz.authorize(read).decision, 'allow');
    const v0 = authz.health().version;
    const { 'readers-read': _dropped, ...rest } = POLICIES;
    const t0 = performance.now();
    assert.equal(
      (await admin('/admin/policy', 'POST', { schema: { 'schema.cedarschema': SCHEMA }, policies: rest })).status,
      201,
    );
    while (authz.health().version === v0 && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
    const elapsed = performance.now() - t0;
    assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);
    assert.equal(authz.authorize(read).decision, 'deny');
    assert.equal((await admin('/admin/policy/rollback', 'POST', { version: v0 })).status, 201);
    const t1 = performance.now();
    while (authz.authorize(read).decision !== 'allow' && performance.now() - t1 < 5000)
      await new Promise((r) => setTimeout(r, 5));
    assert.equal(authz.authorize(read).decision, 'allow', 'rollback restored the permit');
    await t.idp.close();
    for (const [name, req, decision] of CASES)
      assert.equal(authz.authorize(req).decision, decision, `${name}, with the IdP stopped`);
  });
});
