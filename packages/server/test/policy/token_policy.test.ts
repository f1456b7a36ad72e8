import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { basicAuth, startTestIdp, type TestIdp, auditEvents, userTokens } from '@latchkey/testkit';
import * as jose from 'jose';

const A = 'https://orders.internal';
const B = 'https://billing.internal';
const C = 'https://status.internal';
const BASE = { 'base.cedarschema': 'entity Role;\n' };

describe('the IdP decides "may this client have a token for this audience" with Cedar (namespace Latchkey)', () => {
  let t: TestIdp;
  let svc: Record<string, any>;
  const push = async (policies: Record<string, string>, entities: unknown[] = []) => {
    const res = await t.fetch(`${t.issuer}/admin/policy`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ schema: BASE, policies, entities }),
    });
    const body = (await res.json()) as any;
    assert.ok(res.status === 201 || res.status === 200, JSON.stringify(body));
    return body.version as number;
  };
  const token = (aud: string) =>
    t.post(
      '/token',
      { grant_type: 'client_credentials', resource: aud },
      { authorization: basicAuth(svc.client_id, svc.client_secret) },
    );
  /** Waits for the IdP's policy reload (it follows the feed) to give the expected answer. */
  const expectStatus = async (aud: string, status: number) => {
    let last = 0;
    for (let i = 0; i < 100; i++) {
      last = (await token(aud)).status;
      if (last === status) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(last, status, aud);
  };

  before(async () => {
    t = await startTestIdp();
    svc = await t.register({ client_id: 'svc', audiences: [A], roles: ['reader'] });
  });
  after(() => t.close());

  test('without policies, the registration decides', async () => {
    assert.equal((await token(A)).status, 200);
    const b = await token(B);
    assert.deepEqual([b.status, b.body.error], [400, 'invalid_target']);
  });

  test('a permit grants an audience beyond the registration; a forbid overrides the registration; roles and groups work; rollback restores', async () => {
    const v1 = await push({
      'svc-billing': `permit(principal == Latchkey::Client::"svc", action == Latchkey::Action::"request_token", resource == Latchkey::Audience::"${B}");`,
    });
    await expectStatus(B, 200);
    assert.equal((await token(A)).status, 200);

    await push(
      {
        'staging-no-orders': `forbid(principal in Latchkey::ClientGroup::"staging", action == Latchkey::Action::"request_token", resource == Latchkey::Audience::"${A}");`,
        'readers-public':
          'permit(principal, action == Latchkey::Action::"request_token", resource in Latchkey::AudienceGroup::"public") when { principal has roles && principal.roles.contains("reader") };',
      },
      [
        { uid: { type: 'Latchkey::ClientGroup', id: 'staging' }, attrs: {}, parents: [] },
        {
          uid: { type: 'Latchkey::Client', id: 'svc' },
          attrs: {},
          parents: [{ type: 'Latchkey::ClientGroup', id: 'staging' }],
        },
        { uid: { type: 'Latchkey::AudienceGroup', id: 'public' }, attrs: {}, parents: [] },
        {
          uid: { type: 'Latchkey::Audience', id: C },
          attrs: {},
          parents: [{ type: 'Latchkey::AudienceGroup', id: 'public' }],
        },
      ],
    );
    await expectStatus(A, 400);
    assert.equal((await token(C)).status, 200, 'role reader reaches the public audience group');
    assert.equal((await token(B)).status, 400, 'the billing permit is gone');
    const failed = await auditEvents(t.idp.storage, { type: 'token.request_failed', limit: 100 });
    assert.equal(failed.at(-1)!.reason, 'invalid_target');

    const rollback = await t.fetch(`${t.issuer}/admin/policy/rollback`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ version: v1 }),
    });
    assert.equal(rollback.status, 201);
    await expectStatus(A, 200);
    assert.equal((await token(B)).status, 200);
  });

  test('a policy that fails to evaluate is skipped as Cedar specifies (cedar-wasm decides that request)', async () => {
    // Validated policies rarely fail at run time; an overflowing long does (and is beyond the
    // TypeScript evaluator, so this also takes the cedar-wasm path).
    await push({
      'overflowing-forbid':
        'forbid(principal, action == Latchkey::Action::"request_token", resource) when { 9223372036854775807 + 1 > 0 };',
    });
    await expectStatus(B, 400); // the new version is in force (its predecessor granted B)
    assert.equal((await token(A)).status, 200, 'the failing forbid was skipped; the registration stands');
  });
});

describe('the same decision for users: a user token needs the client allowed and no forbid on the user (roles and groups as parents)', () => {
  const APP = 'http://127.0.0.1/callback';
  const PASSWORD = 'lantern by the north gate';
  let t: TestIdp;
  let alice: Record<string, any>;
  const push = async (policies: Record<string, string>, entities: unknown[] = []) => {
    const res = await t.admin('/admin/policy', { schema: BASE, policies, entities });
    assert.ok(res.status === 201 || res.status === 200, await res.text());
  };
  const signIn = (username: string, resource: string[], scope = 'openid') =>
    userTokens(t, { clientId: 'web', redirectUri: APP, username, password: PASSWORD, resource, scope });
  const refused = (p: Promise<unknown>) => assert.rejects(p, /token: 400 .*invalid_target/);

  before(async () => {
    t = await startTestIdp();
    await t.register({
      client_id: 'web',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [APP],
      audiences: [A, B],
    });
    alice = await (
      await t.admin('/admin/users', { username: 'alice', password: PASSWORD, roles: ['reader'], groups: ['eu'] })
    ).json();
    await t.admin('/admin/users', { username: 'bob', password: PASSWORD, groups: ['contractors'] });
  });
  after(() => t.close());

  test('forbids by group, by role and by client apply to users; a permit for a user grants nothing the client may not have', async () => {
    // Without Latchkey policies: whatever the client may have.
    const before = await signIn('bob', [B]);
    assert.deepEqual(jose.decodeJwt(before.access_token).aud, [B, t.issuer]);
    await push(
      {
        'no-contractors-in-billing': `forbid(principal in Latchkey::UserGroup::"contractors", action == Latchkey::Action::"request_token", resource == Latchkey::Audience::"${B}");`,
        'orders-for-readers': `forbid(principal is Latchkey::EndUser, action == Latchkey::Action::"request_token", resource == Latchkey::Audience::"${A}") unless { principal in Latchkey::RoleGroup::"reader" };`,
        'alice-status': `permit(principal == Latchkey::EndUser::"${alice.sub}", action == Latchkey::Action::"request_token", resource == Latchkey::Audience::"${C}");`,
        'eu-via-web-only': `forbid(principal in Latchkey::UserGroup::"eu", action == Latchkey::Action::"request_token", resource) when { context has client_id && context.client_id != "web" };`,
      },
      [{ uid: { type: 'Latchkey::UserGroup', id: 'contractors' }, attrs: {}, parents: [] }],
    );
    // The IdP follows the feed: wait for the new version to be in force.
    for (
      let i = 0;
      i < 100 &&
      (await signIn('bob', [B]).then(
        () => true,
        () => false,
      ));
      i++
    )
      await new Promise((r) => setTimeout(r, 10));
    await refused(signIn('bob', [B]));
    await refused(signIn('bob', [A]));
    const a = await signIn('alice', [A, B]);
    assert.deepEqual(jose.decodeJwt(a.access_token).aud, [A, B, t.issuer]);
    await refused(signIn('alice', [C])); // the permit names her, but the client may not have C
    // A service token is decided as before: the group forbids name users, not the client.
    const failed = await auditEvents(t.idp.storage, { type: 'token.request_failed', limit: 100 });
    assert.equal(failed.at(-1)!.reason, 'invalid_target');
  });

  test("a forbid added later stops the user's next refresh (the decision is taken again at every rotation)", async () => {
    assert.equal((await t.admin('/admin/users/alice/groups', { groups: ['eu', 'suspended'] }, 'PUT')).status, 200);
    const first = await signIn('alice', [B]);
    assert.ok(first.refresh_token);
    await push({
      'suspended-nowhere':
        'forbid(principal in Latchkey::UserGroup::"suspended", action == Latchkey::Action::"request_token", resource);',
    });
    let last: { status: number; body: any } = { status: 0, body: {} };
    let refresh = first.refresh_token as string;
    for (let i = 0; i < 100; i++) {
      last = await t.post('/token', { grant_type: 'refresh_token', client_id: 'web', refresh_token: refresh });
      if (last.status !== 200) break;
      refresh = last.body.refresh_token;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual([last.status, last.body.error], [400, 'invalid_target']);
  });
});
