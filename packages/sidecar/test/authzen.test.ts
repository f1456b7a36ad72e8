import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type Authorizer, createAuthorizer } from '@latchkey/sdk';
import { type Estate, startEstate } from './sidecar_fixture.ts';

const SUBJECTS = [
  { type: 'Service', id: 'checkout' },
  { type: 'Service', id: 'evil' },
  { type: 'user', id: 'alice' }, // renamed to Cedar's User by subject_types
  { type: 'Service', id: 'ghost' }, // not in the bundle
];
const ACTIONS = ['read', 'cancel', 'upload', 'Orders::Action::"read"'];
const RESOURCES = [
  { type: 'Orders::Order', id: '1', properties: { tenant: 'acme' } },
  { type: 'Orders::Order', id: '2', properties: { tenant: 'evil' } },
  {
    type: 'Orders::Order',
    id: '3',
    properties: { tenant: 'acme', owner: { __entity: { type: 'Service', id: 'checkout' } } },
  },
  {
    type: 'Orders::Order',
    id: '4',
    properties: { tenant: 'other', owner: { __entity: { type: 'Service', id: 'evil' } } },
  },
];

describe('AuthZEN 1.0 evaluation API on the sidecar, answered by the local Cedar engine', () => {
  let e: Estate;
  let api: string;
  let reference: Authorizer;
  let auth: Record<string, string>;
  const post = async (path: string, body: unknown, headers: Record<string, string> = auth) => {
    const r = await fetch(`${api}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: r.status, headers: r.headers, body: (await r.json()) as any };
  };

  before(async () => {
    e = await startEstate({ authzen: { subject_types: { user: 'User' } } });
    api = e.sidecar.url as string;
    auth = { authorization: `Bearer ${await e.token('checkout')}` };
    // An authorizer of the test's own, over the same bundle: what an SDK service would decide.
    reference = await createAuthorizer({
      issuer: e.t.issuer,
      credentials: { clientId: e.service.client_id as string, clientSecret: e.service.client_secret as string },
      fetch: e.t.fetch,
    });
  });
  after(async () => {
    reference?.close();
    await e?.close();
  });

  test('metadata at /.well-known/authzen-configuration (§9)', async () => {
    const r = await fetch(`${api}/.well-known/authzen-configuration`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), {
      policy_decision_point: api,
      access_evaluation_endpoint: `${api}/access/v1/evaluation`,
      access_evaluations_endpoint: `${api}/access/v1/evaluations`,
    });
  });

  test('single and batch evaluations agree with the SDK authorizer on a generated table of requests', async () => {
    const table = SUBJECTS.flatMap((subject) =>
      ACTIONS.flatMap((name) => RESOURCES.map((resource) => ({ subject, action: { name }, resource }))),
    );
    const expected = table.map((q) => {
      const action = q.action.name.includes('::') ? q.action.name : `Orders::Action::"${q.action.name}"`;
      const type = q.subject.type === 'user' ? 'User' : q.subject.type;
      return (
        reference.authorize({
          principal: { type, id: q.subject.id },
          action,
          resource: { type: q.resource.type, id: q.resource.id, attrs: q.resource.properties },
          context: {},
        }).decision === 'allow'
      );
    });
    // The table is not one-sided: some of each.
    assert.ok(expected.filter(Boolean).length >= 8 && expected.filter((x) => !x).length >= 8);
    const singles: boolean[] = [];
    for (const q of table) {
      const r = await post('/access/v1/evaluation', q);
      assert.equal(r.status, 200);
      singles.push(r.body.decision);
    }
    assert.deepEqual(singles, expected);
    const batch = await post('/access/v1/evaluations', { evaluations: table });
    assert.deepEqual(
      batch.body.evaluations.map((d: { decision: boolean }) => d.decision),
      expected,
    );
    // Hand-checked rows: a reader of its own tenant, another tenant, the owner's cancel.
    const one = async (subject: object, name: string, resource: object) =>
      (await post('/access/v1/evaluation', { subject, action: { name }, resource })).body.decision;
    assert.equal(await one(SUBJECTS[2] as object, 'read', RESOURCES[0] as object), true);
    assert.equal(await one(SUBJECTS[1] as object, 'read', RESOURCES[0] as object), false);
    assert.equal(await one(SUBJECTS[0] as object, 'cancel', RESOURCES[2] as object), true);
    assert.equal(await one(SUBJECTS[1] as object, 'cancel', RESOURCES[2] as object), false);
  });

  test('batch defaults and the three evaluation semantics (§7.1)', async () => {
    const defaults = { subject: { type: 'Service', id: 'checkout' }, action: { name: 'read' } };
    const evaluations = [
      { resource: RESOURCES[0] },
      { resource: RESOURCES[1] },
      { resource: RESOURCES[0], subject: { type: 'Service', id: 'evil' } },
      { resource: RESOURCES[0] },
    ];
    const all = await post('/access/v1/evaluations', { ...defaults, evaluations });
    assert.deepEqual(all.body.evaluations, [
      { decision: true },
      { decision: false },
      { decision: false },
      { decision: true },
    ]);
    const denyFirst = await post('/access/v1/evaluations', {
      ...defaults,
      evaluations,
      options: { evaluations_semantic: 'deny_on_first_deny' },
    });
    assert.deepEqual(denyFirst.body.evaluations, [{ decision: true }, { decision: false }]);
    const permitFirst = await post('/access/v1/evaluations', {
      ...defaults,
      evaluations: evaluations.slice(1),
      options: { evaluations_semantic: 'permit_on_first_permit' },
    });
    assert.deepEqual(permitFirst.body.evaluations, [{ decision: false }, { decision: false }, { decision: true }]);
    const missing = await post('/access/v1/evaluations', { evaluations: [{ resource: RESOURCES[0] }] });
    assert.equal(missing.body.evaluations[0].decision, false);
    assert.equal(missing.body.evaluations[0].context.error.status, 400);
  });

  test('callers authenticate; bad requests get 400, wrong media types 415; X-Request-ID is echoed', async () => {
    const q = { subject: SUBJECTS[0], action: { name: 'read' }, resource: RESOURCES[0] };
    const anonymous = await post('/access/v1/evaluation', q, {});
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer /);
    assert.equal((await post('/access/v1/evaluation', q, { authorization: 'Bearer x.y.z' })).status, 401);
    const malformed = await post('/access/v1/evaluation', { subject: { type: 'Service' }, action: {}, resource: {} });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error, 'invalid_request');
    assert.equal((await post('/access/v1/evaluation', '{"subject":')).status, 400);
    const text = await fetch(`${api}/access/v1/evaluation`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'text/plain' },
      body: JSON.stringify(q),
    });
    assert.equal(text.status, 415);
    const echoed = await post('/access/v1/evaluation', q, { ...auth, 'x-request-id': 'req-42' });
    assert.equal(echoed.headers.get('x-request-id'), 'req-42');
  });

  test('the Python recipe of docs/sidecar.md, run as written (standard library only)', async () => {
    const docs = readFileSync(new URL('../../../docs/sidecar.md', import.meta.url), 'utf8');
    const code = /<!-- test: authzen-python[^>]*-->\n```python\n([\s\S]*?)```/.exec(docs)?.[1];
    assert.ok(code, 'docs/sidecar.md has the recipe');
    // Asynchronously: the sidecar answering it runs in this process.
    const r = await promisify(execFile)('python3', ['-c', code], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, LATCHKEY_PDP: api, TOKEN: auth.authorization?.slice('Bearer '.length) },
    });
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'True\nFalse\n');
  });
});
