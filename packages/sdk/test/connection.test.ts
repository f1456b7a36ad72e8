// Issue 12: one connection to the IdP, shared by the SDK's components.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { createAuditQueue } from '@latchkey/sdk/audit';
import { createIdpConnection, IdpMetadataError } from '@latchkey/sdk/connection';
import { createTokenClient } from '@latchkey/sdk/token-client';
import { createVerifier } from '@latchkey/sdk/verify';
import { basicAuth, startTestIdp, type TestIdp } from '@latchkey/testkit';

describe('createIdpConnection: one connection for the verifier, the audit queue and the token client', () => {
  let t: TestIdp;
  before(async () => {
    t = await startTestIdp();
  });
  after(() => t.close());

  test('a token-source connection asks for tokens audienced to the IdP, and the verifier\'s feed and the audit queue work through it', async () => {
    const svc = await t.register({ client_id: 'shared-conn', audiences: ['https://orders.internal'] });
    const tokens = createTokenClient({ issuer: t.issuer, clientId: svc.client_id, clientSecret: svc.client_secret, fetch: t.fetch });
    const asked: { audience?: string; scope?: string }[] = [];
    const idp = createIdpConnection({ issuer: t.issuer, fetch: t.fetch, credentials: { tokenSource: { getToken: (r) => (asked.push(r), tokens.getToken(r)) } } });
    const auth = await idp.authorization();
    assert.equal(jose.decodeJwt(auth.replace(/^Bearer /, '')).aud, t.issuer);
    assert.deepEqual(asked[0], { audience: t.issuer });
    assert.equal((await idp.metadata()).issuer, t.issuer);

    const verifier = await createVerifier({ connection: idp, audience: 'https://orders.internal' });
    const audit = createAuditQueue({ connection: idp, flushInterval: 3600 });
    try {
      assert.notEqual(verifier.health().revocations.feed, 'off', 'the revocation feed opened with the shared connection');
      const caller = await t.register({ audiences: ['https://orders.internal'] });
      const token = (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth(caller.client_id, caller.client_secret) })).body.access_token as string;
      assert.equal((await verifier.verify(token)).client_id, caller.client_id);
      audit.record({ type: 'authz.decision', outcome: 'success', actor: 'Service::"x"', reason: 'permit' });
      await audit.flush();
      const events = await t.idp.storage.listAuditEvents({ type: 'authz.decision', limit: 10 });
      assert.equal(events.at(-1)!.client_id, 'shared-conn', 'reported under the connection\'s identity');
    } finally {
      verifier.close();
      await audit.close();
    }
  });

  test('metadata of another issuer is a mismatch; without credentials there is no authorization', async () => {
    const wrong = createIdpConnection({ issuer: `${t.issuer}/other`, fetch: t.fetch });
    await assert.rejects(wrong.metadata(), (err: unknown) => err instanceof IdpMetadataError && (err.reason === 'mismatch' || err.reason === 'unreachable'));
    const anonymous = createIdpConnection({ issuer: t.issuer, fetch: t.fetch });
    assert.equal(anonymous.authenticated, false);
    await assert.rejects(anonymous.authorization(), TypeError);
  });
});
