import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorkloadIdentity, type WorkloadIdentity } from '@latchkey/sdk';
import { Agent, fetch as undiciFetch } from 'undici';
import { type Estate, startEstate } from './sidecar_fixture.ts';

describe('the reverse proxy terminating mutual TLS with its own workload identity', () => {
  let e: Estate;
  let checkout: WorkloadIdentity;
  let evil: WorkloadIdentity;

  before(async () => {
    e = await startEstate({}, { workload_tls: true });
    const identity = (name: string) => {
      const c = e.clients[name] as Record<string, string>;
      return createWorkloadIdentity({
        issuer: e.t.issuer,
        credentials: { clientId: c.client_id as string, clientSecret: c.client_secret as string },
        ...(e.t.caPem ? { idpCa: e.t.caPem } : {}),
        // The sidecar's SVID names the protected service, not a host.
        authorizePeer: [e.sidecar.workload?.spiffeId as string],
      });
    };
    checkout = await identity('checkout');
    evil = await identity('evil');
  });
  after(async () => {
    await checkout?.close();
    await evil?.close();
    await e?.close();
  });

  test('the sidecar serves its own SVID (spiffe://…/svc/orders) and is reached over mTLS', async () => {
    assert.match(e.sidecar.proxyUrl as string, /^https:/);
    assert.match(e.sidecar.workload?.spiffeId ?? '', /^spiffe:\/\/[^/]+\/svc\/orders$/);
    const r = await checkout.fetch(`${e.sidecar.proxyUrl}/health`);
    assert.equal(r.status, 200);
  });

  test('auth: mtls routes take the peer’s workload identity as the principal, and Cedar decides on it', async () => {
    const ok = await checkout.fetch(`${e.sidecar.proxyUrl}/peer/tenants/acme`);
    assert.equal(ok.status, 200);
    const seen = ((await ok.json()) as { headers: Record<string, string> }).headers;
    assert.equal(seen['x-latchkey-peer'], checkout.spiffeId);
    assert.equal((await checkout.fetch(`${e.sidecar.proxyUrl}/peer/tenants/evil`)).status, 403);
    assert.equal((await evil.fetch(`${e.sidecar.proxyUrl}/peer/tenants/acme`)).status, 403);
    assert.equal((await evil.fetch(`${e.sidecar.proxyUrl}/peer/tenants/evil`)).status, 200);
  });

  test('bearer routes still take the token, over the mTLS connection', async () => {
    const token = await e.token('checkout');
    const r = await checkout.fetch(`${e.sidecar.proxyUrl}/tenants/acme/orders/1`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(r.status, 200);
    assert.equal((await checkout.fetch(`${e.sidecar.proxyUrl}/tenants/acme/orders/1`)).status, 401);
  });

  test('a client without a workload certificate does not get through the handshake', async () => {
    // It trusts the sidecar's certificate, so only the missing client certificate can refuse it.
    const trusting = new Agent({
      connect: { ca: checkout.trustBundlePem, checkServerIdentity: () => undefined },
    });
    await assert.rejects(
      undiciFetch(`${e.sidecar.proxyUrl}/health`, { dispatcher: trusting }),
      (err: Error & { cause?: { code?: string } }) => err instanceof TypeError && err.cause !== undefined,
    );
    await trusting.close();
    // The same request with the workload certificate gets through: the handshake refused only its absence.
    const presenting = new Agent({ connect: checkout.clientOptions() });
    assert.equal((await undiciFetch(`${e.sidecar.proxyUrl}/health`, { dispatcher: presenting })).status, 200);
    await presenting.close();
  });
});
