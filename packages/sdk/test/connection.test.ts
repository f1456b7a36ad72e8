// Issue 12: one connection to the IdP, shared by the SDK's components.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { createAuditQueue } from '@latchkey/sdk/audit';
import { createAuthorizer } from '@latchkey/sdk/authorize';
import { createIdpConnection, IdpMetadataError } from '@latchkey/sdk/connection';
import { createTokenClient } from '@latchkey/sdk/token-client';
import { createVerifier } from '@latchkey/sdk/verify';
import { basicAuth, startTestIdp, type TestIdp, auditEvents } from '@latchkey/testkit';

describe('createIdpConnection: one connection for the verifier, the audit queue and the token client', () => {
  let t: TestIdp;
  before(async () => {
    t = await startTestIdp();
  });
  after(() => t.close());

  test("a token-source connection asks for tokens audienced to the IdP, and the verifier's feed and the audit queue work through it", async () => {
    const svc = await t.register({ client_id: 'shared-conn', audiences: ['https://orders.internal'] });
    const tokens = createTokenClient({
      issuer: t.issuer,
      clientId: svc.client_id,
      clientSecret: svc.client_secret,
      fetch: t.fetch,
    });
    const asked: { audience?: string; scope?: string }[] = [];
    const idp = createIdpConnection({
      issuer: t.issuer,
      fetch: t.fetch,
      credentials: { tokenSource: { getToken: (r) => (asked.push(r), tokens.getToken(r)) } },
    });
    const auth = await idp.authorization();
    assert.equal(jose.decodeJwt(auth.replace(/^Bearer /, '')).aud, t.issuer);
    assert.deepEqual(asked[0], { audience: t.issuer });
    assert.equal((await idp.metadata()).issuer, t.issuer);

    const verifier = await createVerifier({ connection: idp, audience: 'https://orders.internal' });
    const audit = createAuditQueue({ connection: idp, flushInterval: 3600 });
    try {
      assert.notEqual(
        verifier.health().revocations.feed,
        'off',
        'the revocation feed opened with the shared connection',
      );
      const caller = await t.register({ audiences: ['https://orders.internal'] });
      const token = (
        await t.post(
          '/token',
          { grant_type: 'client_credentials' },
          { authorization: basicAuth(caller.client_id, caller.client_secret) },
        )
      ).body.access_token as string;
      assert.equal((await verifier.verify(token)).client_id, caller.client_id);
      audit.record({ type: 'authz.decision', outcome: 'success', actor: 'Service::"x"', reason: 'permit' });
      await audit.flush();
      const events = await auditEvents(t.idp.storage, { type: 'authz.decision', limit: 10 });
      assert.equal(events.at(-1)!.client_id, 'shared-conn', "reported under the connection's identity");
    } finally {
      verifier.close();
      await audit.close();
    }
  });

  test('metadata of another issuer is a mismatch; without credentials there is no authorization', async () => {
    const wrong = createIdpConnection({ issuer: `${t.issuer}/other`, fetch: t.fetch });
    await assert.rejects(
      wrong.metadata(),
      (err: unknown) => err instanceof IdpMetadataError && (err.reason === 'mismatch' || err.reason === 'unreachable'),
    );
    const anonymous = createIdpConnection({ issuer: t.issuer, fetch: t.fetch });
    assert.equal(anonymous.authenticated, false);
    await assert.rejects(anonymous.authorization(), TypeError);
  });

  test('the verifier and the authorizer of one connection share one feed stream; revocations and policy versions both arrive on it', async () => {
    const svc = await t.register({ client_id: 'one-stream', audiences: ['https://orders.internal'] });
    const admin = (path: string, body: unknown) =>
      t.fetch(`${t.issuer}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const schema = {
      's.cedarschema': 'entity User; entity Doc; action read appliesTo { principal: User, resource: Doc };',
    };
    assert.equal(
      (await admin('/admin/policy', { schema, policies: { deny: 'forbid(principal, action, resource);' } })).status,
      201,
    );
    const idp = createIdpConnection({
      issuer: t.issuer,
      fetch: t.fetch,
      credentials: { clientId: svc.client_id, clientSecret: svc.client_secret },
    });
    const before = (t.idp.app as unknown as { feedHubSize(): number }).feedHubSize();
    const verifier = await createVerifier({ connection: idp, audience: 'https://orders.internal' });
    const authz = await createAuthorizer({ connection: idp, pollInterval: 3600 });
    try {
      const waitFor = async (cond: () => boolean, what: string) => {
        for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
        assert.ok(cond(), what);
      };
      await waitFor(() => verifier.health().revocations.feed === 'connected', 'the stream opened');
      assert.equal(idp.feed.connections, 1);
      assert.equal(
        (t.idp.app as unknown as { feedHubSize(): number }).feedHubSize() - before,
        1,
        'one SSE connection at the IdP for both',
      );
      const req = { principal: 'User::"ann"', action: 'Action::"read"', resource: 'Doc::"d"' } as const;
      assert.equal(authz.authorize(req).decision, 'deny');
      // A new version reaches the authorizer through the shared stream (polling is off)...
      assert.equal(
        (await admin('/admin/policy', { schema, policies: { allow: 'permit(principal, action, resource);' } })).status,
        201,
      );
      await waitFor(() => authz.authorize(req).decision === 'allow', 'the new policy version arrived');
      // ...and a revocation reaches the verifier through it.
      const caller = await t.register({ audiences: ['https://orders.internal'] });
      const token = (
        await t.post(
          '/token',
          { grant_type: 'client_credentials' },
          { authorization: basicAuth(caller.client_id, caller.client_secret) },
        )
      ).body.access_token as string;
      assert.equal((await verifier.verify(token)).client_id, caller.client_id);
      await t.post('/revoke', { token }, { authorization: basicAuth(caller.client_id, caller.client_secret) });
      let revoked = false;
      for (let i = 0; i < 100 && !revoked; i++) {
        revoked = await verifier.verify(token).then(
          () => false,
          () => true,
        );
        if (!revoked) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(revoked, 'the revocation arrived');
    } finally {
      verifier.close();
      authz.close();
    }
    assert.equal(idp.feed.connections, 0, 'the stream closes with its last consumer');
  });
});
