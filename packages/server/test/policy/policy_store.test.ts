import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { basicAuth, startTestIdp, type TestIdp, auditEvents } from '@latchkey/testkit';
import { openSse } from '../feeds/sse_reader.ts';

const SCHEMA = `entity Role in [Role];
entity Service in [Role] { tenant: String };
namespace Orders {
  entity Order { owner: Service, tenant: String };
  action read, cancel appliesTo { principal: Service, resource: Order };
}
`;
const POLICIES = {
  'readers-read':
    'permit(principal in Role::"reader", action == Orders::Action::"read", resource) when { principal.tenant == resource.tenant };',
  'owners-cancel':
    'permit(principal, action == Orders::Action::"cancel", resource) when { resource.owner == principal };',
};

describe('policy store: validated, versioned bundles', () => {
  let t: TestIdp;
  let svc: Record<string, any>;
  const admin = (path: string, method = 'GET', body?: unknown) =>
    t.fetch(`${t.issuer}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${t.adminToken}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const bodyOf = async (res: Response) => ({ status: res.status, body: (await res.json()) as any });

  before(async () => {
    t = await startTestIdp();
    svc = await t.register({ client_id: 'orders', audiences: ['https://orders.internal'] });
  });
  after(() => t.close());

  test('push publishes version 1; the active bundle is served to services with an ETag', async () => {
    const r = await bodyOf(
      await admin('/admin/policy', 'POST', {
        schema: { 'base.cedarschema': SCHEMA },
        policies: POLICIES,
        note: 'first',
      }),
    );
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.version, 1);
    assert.deepEqual(r.body.warnings, []);
    const feed = await t.fetch(`${t.issuer}/feeds/policy`, {
      headers: { authorization: basicAuth(svc.client_id, svc.client_secret) },
    });
    assert.equal(feed.status, 200);
    const bundle = (await feed.json()) as any;
    assert.equal(bundle.version, 1);
    assert.deepEqual(bundle.policies, POLICIES);
    assert.equal(feed.headers.get('etag'), `"${bundle.digest}"`);
    const again = await t.fetch(`${t.issuer}/feeds/policy`, {
      headers: {
        authorization: basicAuth(svc.client_id, svc.client_secret),
        'if-none-match': feed.headers.get('etag')!,
      },
    });
    assert.equal(again.status, 304);
    assert.equal((await t.fetch(`${t.issuer}/feeds/policy`)).status, 401);
    // The same content again is not a new version.
    const same = await bodyOf(
      await admin('/admin/policy', 'POST', { schema: { 'base.cedarschema': SCHEMA }, policies: POLICIES }),
    );
    assert.deepEqual([same.status, same.body.version, same.body.unchanged], [200, 1, true]);
  });

  test("a policy that fails schema validation is refused with Cedar's message and location; nothing changes", async () => {
    const bad = { ...POLICIES, typo: 'permit(principal, action == Orders::Action::"raed", resource);' };
    const r = await bodyOf(
      await admin('/admin/policy', 'POST', { schema: { 'base.cedarschema': SCHEMA }, policies: bad }),
    );
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'validation_failed');
    const e = r.body.errors.find((x: any) => x.source === 'typo');
    assert.ok(e, JSON.stringify(r.body));
    assert.match(e.message, /unrecognized action `Orders::Action::"raed"`/);
    assert.match(e.help, /did you mean `Orders::Action::"read"`/);
    assert.deepEqual([e.line, e.column], [1, 29]);
    assert.match(r.body.error_description, /^the policy bundle is not valid: typo:1:29: /);
    const parse = await bodyOf(
      await admin('/admin/policy', 'POST', {
        schema: { 'base.cedarschema': SCHEMA },
        policies: { broken: 'permit(principal,\n  action resource);' },
      }),
    );
    assert.equal(parse.status, 400);
    assert.equal(parse.body.errors[0].source, 'broken');
    assert.equal(parse.body.errors[0].line, 2);
    const schemaErr = await bodyOf(
      await admin('/admin/policy', 'POST', {
        schema: { 'a.cedarschema': 'entity Role;', 'b.cedarschema': 'entity Service in [Nope];' },
        policies: {},
      }),
    );
    assert.equal(schemaErr.status, 400);
    assert.equal(schemaErr.body.errors[0].kind, 'schema');
    assert.equal((await bodyOf(await admin('/admin/policy'))).body.version, 1, 'the active version is unchanged');
    const dry = await bodyOf(
      await admin('/admin/policy/validate', 'POST', { schema: { 'base.cedarschema': SCHEMA }, policies: bad }),
    );
    assert.deepEqual([dry.status, dry.body.ok], [200, false]);
  });

  test('roles and entities: create, assign, revoke — each a validated version; a bad attribute is refused', async () => {
    assert.equal((await admin('/admin/policy/entities/Role/reader', 'PUT', {})).status, 201);
    const assign = await bodyOf(
      await admin(`/admin/policy/entities/Service/orders/parents`, 'POST', { parent: { type: 'Role', id: 'reader' } }),
    );
    assert.equal(assign.status, 400, 'Service needs its tenant attribute');
    assert.equal(assign.body.errors[0].kind, 'entities');
    assert.equal(
      (await admin('/admin/policy/entities/Service/orders', 'PUT', { attrs: { tenant: 'acme' } })).status,
      201,
    );
    const ok = await bodyOf(
      await admin(`/admin/policy/entities/Service/orders/parents`, 'POST', { parent: { type: 'Role', id: 'reader' } }),
    );
    assert.equal(ok.status, 201);
    const active = (await bodyOf(await admin('/admin/policy'))).body;
    assert.deepEqual(
      active.entities.find((e: any) => e.uid.id === 'orders'),
      { uid: { type: 'Service', id: 'orders' }, attrs: { tenant: 'acme' }, parents: [{ type: 'Role', id: 'reader' }] },
    );
    const diff = (await bodyOf(await admin(`/admin/policy/diff?from=1&to=${ok.body.version}`))).body;
    assert.deepEqual(diff.entities.added, ['Role::"reader"', 'Service::"orders"']);
    assert.deepEqual(diff.policies, { added: [], removed: [], changed: [] });
    assert.equal((await admin('/admin/policy/entities/Service/orders/parents/Role/reader', 'DELETE')).status, 201);
    assert.deepEqual(
      (await bodyOf(await admin('/admin/policy'))).body.entities.find((e: any) => e.uid.id === 'orders').parents,
      [],
    );
    assert.equal(
      (await admin('/admin/policy/entities/Service/orders/parents', 'POST', { parent: { type: 'Role', id: 'nobody' } }))
        .status,
      404,
    );
  });

  test('history, diff and rollback; a stale expected_version is 409; the stream announces each version', async () => {
    const stream = await openSse(`${t.issuer}/feeds/stream?streams=policy`, {
      ca: t.caPem,
      headers: { authorization: basicAuth(svc.client_id, svc.client_secret) },
    });
    try {
      const head = (await bodyOf(await admin('/admin/policy'))).body;
      const stale = await admin('/admin/policy', 'POST', {
        schema: head.schema,
        policies: {},
        expected_version: head.version - 1,
      });
      assert.equal(stale.status, 409);
      const dropped = await bodyOf(
        await admin('/admin/policy', 'POST', {
          schema: head.schema,
          policies: { 'readers-read': POLICIES['readers-read'] },
          expected_version: head.version,
        }),
      );
      assert.equal(dropped.status, 201);
      const [event] = await stream.waitFor(1);
      assert.ok(event);
      assert.equal(event.event, 'policy');
      assert.equal(JSON.parse(event.data).version, dropped.body.version);
      const diff = (await bodyOf(await admin(`/admin/policy/diff?from=${head.version}`))).body;
      assert.deepEqual(diff.policies.removed, ['owners-cancel']);
      const back = await bodyOf(await admin('/admin/policy/rollback', 'POST', { version: 1 }));
      assert.equal(back.status, 201);
      const active = (await bodyOf(await admin('/admin/policy'))).body;
      const v1 = (await bodyOf(await admin('/admin/policy/versions/1'))).body;
      assert.equal(active.digest, v1.digest, 'the content of version 1 is active again');
      assert.equal(active.note, 'rollback to version 1');
      const versions = (await bodyOf(await admin('/admin/policy/versions'))).body.versions;
      assert.deepEqual(
        versions.map((v: any) => v.version),
        [back.body.version, ...Array.from({ length: back.body.version - 1 }, (_, i) => back.body.version - 1 - i)],
      );
      const log = await auditEvents(t.idp.storage, { type: 'policy.published', limit: 100 });
      assert.equal(log.length, back.body.version);
      assert.equal(log.at(-1)!.reason, 'rollback');
    } finally {
      await stream.close();
    }
  });

  test('bad input: wrong content type, unknown fields, bad versions', async () => {
    const form = await t.fetch(`${t.issuer}/admin/policy`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=b',
    });
    assert.equal(form.status, 415);
    assert.equal((await admin('/admin/policy', 'POST', { schema: { a: SCHEMA }, policies: {}, extra: 1 })).status, 400);
    assert.equal((await admin('/admin/policy/versions/0')).status, 400);
    assert.equal((await admin('/admin/policy/versions/999')).status, 404);
    assert.equal((await admin('/admin/policy/rollback', 'POST', { version: 999 })).status, 404);
    assert.equal((await admin('/admin/policy/diff?from=abc')).status, 400);
    assert.equal((await t.fetch(`${t.issuer}/admin/policy`)).status, 401);
  });
});

describe('per-service bundles (policy_namespaces)', () => {
  test('a service registered for its namespaces receives only their schema, policies and entities, with the shared principals', async () => {
    const t = await startTestIdp();
    try {
      const schema = {
        'base.cedarschema': 'entity Role in [Role];\nentity Service in [Role];\n',
        'orders.cedarschema':
          'namespace Orders { entity Order; action read appliesTo { principal: Service, resource: Order }; }\n',
        'billing.cedarschema':
          'namespace Billing { entity Invoice; action pay appliesTo { principal: Service, resource: Invoice }; }\n',
      };
      const policies = {
        'orders-read': 'permit(principal in Role::"reader", action == Orders::Action::"read", resource);',
        'billing-pay': 'permit(principal in Role::"payer", action == Billing::Action::"pay", resource);',
        'no-one-on-sunday': 'forbid(principal, action, resource) when { context has sunday && context.sunday };',
      };
      const entities = [
        { uid: { type: 'Role', id: 'reader' }, attrs: {}, parents: [] },
        { uid: { type: 'Service', id: 'checkout' }, attrs: {}, parents: [{ type: 'Role', id: 'reader' }] },
        { uid: { type: 'Orders::Order', id: '1' }, attrs: {}, parents: [] },
        { uid: { type: 'Billing::Invoice', id: '9' }, attrs: {}, parents: [] },
      ];
      const pushed = await t.fetch(`${t.issuer}/admin/policy`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ schema, policies, entities }),
      });
      assert.equal(pushed.status, 201);
      const orders = await t.register({ audiences: ['https://orders.internal'], policy_namespaces: ['Orders'] });
      const everything = await t.register({ audiences: ['https://ops.internal'] });
      const get = async (c: Record<string, any>, etag?: string) =>
        t.fetch(`${t.issuer}/feeds/policy`, {
          headers: {
            authorization: basicAuth(c.client_id, c.client_secret),
            ...(etag ? { 'if-none-match': etag } : {}),
          },
        });
      const o = await get(orders);
      const ob = (await o.json()) as any;
      assert.deepEqual(Object.keys(ob.policies).sort(), ['no-one-on-sunday', 'orders-read']);
      assert.deepEqual(ob.entities.map((e: any) => `${e.uid.type}::${e.uid.id}`).sort(), [
        'Orders::Order::1',
        'Role::reader',
        'Service::checkout',
      ]);
      const text = Object.values(ob.schema).join('\n');
      assert.match(text, /namespace Orders/);
      assert.doesNotMatch(text, /Billing/);
      assert.equal((await get(orders, o.headers.get('etag')!)).status, 304);
      const all = (await (await get(everything)).json()) as any;
      assert.deepEqual(Object.keys(all.policies).sort(), ['billing-pay', 'no-one-on-sunday', 'orders-read']);
      assert.equal(all.entities.length, 4);
      assert.notEqual(all.digest, ob.digest);
    } finally {
      await t.close();
    }
  });
});
