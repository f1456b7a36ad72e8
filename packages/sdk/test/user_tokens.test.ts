// Issue 15: a user's token, verified by the SDK in a service, authorized by Cedar through the
// user's roles and groups; disabling the user refuses the token at the service within a second.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAuthorizer, type Authorizer } from '@latchkey/sdk/authorize';
import { createIdpConnection } from '@latchkey/sdk/connection';
import { createVerifier, type Verifier, VerifyError } from '@latchkey/sdk/verify';
import { startTestIdp, type TestIdp, userTokens } from '@latchkey/testkit';

const ORDERS = 'https://orders.internal';
const APP = 'http://127.0.0.1/callback';
const PASSWORD = 'a quiet harbour at noon';

describe('user tokens in a service: the SDK verifies them and Cedar decides through roles and groups', () => {
  let t: TestIdp;
  let verifier: Verifier;
  let authorizer: Authorizer;

  before(async () => {
    t = await startTestIdp();
    const published = await t.admin('/admin/policy', {
      schema: {
        'schema.cedarschema': `entity Role;
entity Group;
entity User in [Role, Group] { department?: String };
namespace Orders {
  entity Order { region: String };
  action read, refund, export appliesTo { principal: [User], resource: Order, context: {} };
}
`,
      },
      policies: {
        'regional-reads':
          'permit(principal in Group::"eu", action == Orders::Action::"read", resource) when { resource.region == "eu" };',
        'refunds-by-role': 'permit(principal in Role::"refunder", action == Orders::Action::"refund", resource);',
        'exports-by-department':
          'permit(principal, action == Orders::Action::"export", resource) when { principal has department && principal.department == "sales" };',
      },
      entities: [],
    });
    assert.equal(published.status, 201, await published.text());
    const service = await t.register({ client_id: 'orders', audiences: [ORDERS] });
    await t.register({
      client_id: 'web',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      redirect_uris: [APP],
      audiences: [ORDERS],
      user_attributes: ['department'],
    });
    for (const [username, roles, groups, department] of [
      ['erin', ['refunder'], ['eu'], 'sales'],
      ['frank', [], ['us'], 'support'],
    ] as const)
      await t.admin('/admin/users', {
        username,
        password: PASSWORD,
        roles,
        groups,
        attributes: { department, desk: 'not for tokens' },
      });
    const connection = createIdpConnection({
      issuer: t.issuer,
      fetch: t.fetch,
      credentials: { clientId: 'orders', clientSecret: service.client_secret },
    });
    verifier = await createVerifier({ connection, audience: ORDERS });
    authorizer = await createAuthorizer({ connection });
  });
  after(async () => {
    verifier?.close();
    authorizer?.close();
    await t.close();
  });

  const signIn = (username: string) =>
    userTokens(t, { clientId: 'web', redirectUri: APP, username, password: PASSWORD });
  const decide = (claims: Awaited<ReturnType<Verifier['verify']>>, action: string, region: string) =>
    authorizer.authorize({
      principal: claims,
      action: `Orders::Action::"${action}"`,
      resource: { type: 'Orders::Order', id: '42', attrs: { region } },
    }).decision;

  test('groups and roles from the token are the user’s parents in Cedar', async () => {
    const erin = await verifier.verify((await signIn('erin')).access_token);
    assert.equal(erin.client_id, 'web');
    assert.notEqual(erin.sub, erin.client_id, 'a user, not a service');
    assert.equal(decide(erin, 'read', 'eu'), 'allow', 'in Group::"eu"');
    assert.equal(decide(erin, 'read', 'us'), 'deny', 'the policy’s condition still applies');
    assert.equal(decide(erin, 'refund', 'us'), 'allow', 'in Role::"refunder"');
    const frank = await verifier.verify((await signIn('frank')).access_token);
    assert.equal(decide(frank, 'read', 'eu'), 'deny', 'Group::"us" only');
    assert.equal(decide(frank, 'refund', 'eu'), 'deny', 'no role');
  });

  test('attributes the client names travel in the token and are the user’s Cedar attributes; a change revokes the tokens', async () => {
    const erin = await verifier.verify((await signIn('erin')).access_token);
    assert.deepEqual(erin.attributes, { department: 'sales' }, 'only what the registration names');
    assert.equal(decide(erin, 'export', 'eu'), 'allow');
    const frank = await verifier.verify((await signIn('frank')).access_token);
    assert.equal(decide(frank, 'export', 'eu'), 'deny', 'department support');
    // A new department: the old token is revoked (the policy may no longer allow what it carries),
    // and the next token carries the new value — decided afresh, not from the decision cache.
    const old = (await signIn('frank')).access_token;
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
    const patched = await t.admin('/admin/users/frank', { attributes: { department: 'sales' } }, 'PATCH');
    assert.equal(patched.status, 200);
    // A subject revocation covers its own second (iat has one-second resolution).
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
    const moved = await verifier.verify((await signIn('frank')).access_token);
    assert.equal(decide(moved, 'export', 'eu'), 'allow');
    let refused: unknown;
    for (let i = 0; i < 50 && !refused; i++) {
      refused = await verifier.verify(old).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (!refused) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((refused as VerifyError)?.code, 'token_revoked');
  });

  test('disabling the user: the service refuses their token within a second (pushed revocation)', async () => {
    const token = (await signIn('erin')).access_token;
    await verifier.verify(token);
    // iat has one-second resolution and a revocation covers its own second: wait into the next one.
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
    const disabled = await t.admin('/admin/users/erin/disable', {});
    assert.equal(disabled.status, 200);
    const started = Date.now();
    let refused: unknown;
    while (!refused && Date.now() - started < 1000) {
      refused = await verifier.verify(token).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (!refused) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(refused instanceof VerifyError, 'refused within a second');
    assert.equal((refused as VerifyError).code, 'token_revoked');
  });
});
