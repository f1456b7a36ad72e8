import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createAuditQueue } from '@latchkey/sdk/audit';
import { createAuthorizer } from '@latchkey/sdk/authorize';
import { registerLatchkeyMetrics } from '@latchkey/sdk/metrics';
import { createVerifier } from '@latchkey/sdk/verify';
import { basicAuth, parsePrometheus, startTestIdp } from '@latchkey/testkit';

const parse = parsePrometheus;

test("the SDK's metrics in the service's own registry: verifications, feed lag, cache ages, decisions, the audit queue", async () => {
  const t = await startTestIdp();
  try {
    const reg = await t.register({ client_id: 'orders', audiences: ['https://orders.internal'] });
    const published = await t.admin('/admin/policy', {
      schema: {
        's.cedarschema':
          'entity Service; entity Doc; action read, write appliesTo { principal: Service, resource: Doc };',
      },
      policies: { 'read-all': 'permit(principal, action == Action::"read", resource);' },
    });
    assert.equal(published.status, 201);
    const credentials = { clientId: reg.client_id, clientSecret: reg.client_secret };
    const common = { issuer: t.issuer, credentials, fetch: t.fetch };
    const audit = createAuditQueue({ ...common, allowRate: 1, flushInterval: 3600 });
    const verifier = await createVerifier({ ...common, audience: 'https://orders.internal', audit });
    const authorizer = await createAuthorizer({ ...common, audit });
    const registry = new Registry();
    registerLatchkeyMetrics(registry, { verifier, authorizer, audit });

    const token = (
      await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth(reg as never) })
    ).body.access_token as string;
    await verifier.verify(token);
    await verifier.verify(token);
    await verifier.verify(`${token}x`).catch(() => undefined);
    for (let i = 0; i < 5; i++)
      authorizer.authorize({ principal: 'Service::"orders"', action: 'Action::"read"', resource: `Doc::"${i}"` });
    authorizer.authorize({ principal: 'Service::"orders"', action: 'Action::"write"', resource: 'Doc::"1"' });

    const m = parse(await registry.metrics());
    assert.equal(m.get('latchkey_sdk_verifications_total{result="ok"}'), 2);
    assert.equal(m.get('latchkey_sdk_verifications_total{result="signature_invalid"}'), 1);
    assert.equal(m.get('latchkey_sdk_jwks_keys'), 2);
    assert.ok(m.get('latchkey_sdk_jwks_age_seconds')! >= 0);
    assert.equal(m.get('latchkey_sdk_revocation_feed_connected'), 1);
    assert.ok(m.get('latchkey_sdk_revocation_feed_age_seconds')! >= 0);
    assert.equal(m.get('latchkey_sdk_decisions_total{decision="allow"}'), 5);
    assert.equal(m.get('latchkey_sdk_decisions_total{decision="deny"}'), 1);
    assert.equal(m.get('latchkey_sdk_policy_version'), authorizer.health().version);
    assert.equal(m.get('latchkey_sdk_policy_engine_broken'), 0);
    // allowRate 1: one allow and the deny on their own (plus the rejected token's report), four allows counted.
    assert.equal(m.get('latchkey_sdk_audit_aggregated_total'), 4);
    assert.equal(m.get('latchkey_sdk_audit_pending'), audit.pending);
    assert.equal(m.get('latchkey_sdk_audit_dropped_total'), 0);
    // A revocation arrives on the feed: the entry count moves.
    assert.equal((await t.post('/revoke', { token }, { authorization: basicAuth(reg as never) })).status, 200);
    const deadline = Date.now() + 3000;
    while (verifier.health().revocations.entries === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(parse(await registry.metrics()).get('latchkey_sdk_revocation_entries'), 1);
    // The registry is the service's: a prefix keeps two verifiers apart.
    const other = new Registry();
    registerLatchkeyMetrics(other, { verifier, prefix: 'edge' });
    assert.ok((await other.metrics()).includes('edge_verifications_total{result="ok"} 2'));
    verifier.close();
    authorizer.close();
    await audit.close();
  } finally {
    await t.close();
  }
});
