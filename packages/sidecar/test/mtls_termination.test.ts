import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createWorkloadIdentity, type WorkloadIdentity } from '@latchkey/sdk';
import { Agent, fetch as undiciFetch } from 'undici';
import { parse, stringify } from 'yaml';
import { loadSidecarConfig, startSidecar } from '../src/index.ts';
import { opensslSelfSigned } from '@latchkey/testkit';
import { type Estate, startEstate } from './sidecar_fixture.ts';

describe('the reverse proxy and the sidecar API terminating mutual TLS with its own workload identity', () => {
  let e: Estate;
  let checkout: WorkloadIdentity;
  let evil: WorkloadIdentity;

  before(async () => {
    e = await startEstate({ listen: { host: '127.0.0.1', port: 0, workload_tls: true } }, { workload_tls: true });
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

  test('AuthZEN takes an mTLS caller’s workload certificate until its client is revoked — refused within a second with the workload’s own TLS (at the handshake) and with static TLS files (401)', async () => {
    // A second sidecar on the same IdP whose API terminates TLS with files: a server certificate made
    // by openssl, client certificates checked against the workload CA's trust bundle.
    const dir = join(e.dir, 'static-tls');
    mkdirSync(dir, { recursive: true });
    const server = await opensslSelfSigned(dir, 'server', '/CN=127.0.0.1', ['subjectAltName=IP:127.0.0.1']);
    writeFileSync(join(dir, 'clients.pem'), checkout.trustBundlePem);
    const config = parse(readFileSync(e.configFile, 'utf8'));
    delete config.proxy;
    delete config.ext_authz;
    config.listen = {
      host: '127.0.0.1',
      port: 0,
      tls: {
        cert_file: server.certFile,
        key_file: server.keyFile,
        client_ca_file: join(dir, 'clients.pem'),
      },
    };
    writeFileSync(join(dir, 'sidecar.yaml'), stringify(config));
    const staticTls = await startSidecar(
      loadSidecarConfig(join(dir, 'sidecar.yaml'), {
        LATCHKEY_SIDECAR_CLIENT_SECRET: e.service.client_secret as string,
      }),
      { logger: false },
    );
    const serverCa = readFileSync(server.certFile, 'utf8');
    const agents = new Map<WorkloadIdentity, Agent>();
    const evaluate = (who: WorkloadIdentity, base: string) => {
      const body = JSON.stringify({
        subject: { type: 'Service', id: 'checkout' },
        action: { name: 'read' },
        resource: { type: 'Orders::Order', id: '1', properties: { tenant: 'acme' } },
      });
      const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body };
      if (base === e.sidecar.url) return who.fetch(`${base}/access/v1/evaluation`, init);
      let agent = agents.get(who);
      if (!agent) {
        agent = new Agent({ connect: { ...who.clientOptions(), ca: serverCa, checkServerIdentity: () => undefined } });
        agents.set(who, agent);
      }
      return undiciFetch(`${base}/access/v1/evaluation`, { ...init, dispatcher: agent });
    };
    try {
      const bases = [e.sidecar.url as string, staticTls.url as string];
      for (const base of bases) assert.match(base, /^https:/);
      for (const base of bases)
        for (const who of [checkout, evil]) assert.equal((await evaluate(who, base)).status, 200, base);
      assert.equal((await evaluate(evil, bases[1] as string)).status, 200);
      const revoked = await e.t.admin('/admin/clients/evil/revoke', {});
      assert.equal(revoked.status, 200);
      const refused = async (base: string): Promise<string> => {
        const deadline = Date.now() + 1000;
        for (;;) {
          const outcome = await evaluate(evil, base).then(
            (r) => String(r.status),
            () => 'handshake refused',
          );
          if (outcome !== '200' || Date.now() > deadline) return outcome;
          await new Promise((r) => setTimeout(r, 25));
        }
      };
      assert.equal(
        await refused(bases[0] as string),
        'handshake refused',
        'the workload’s own TLS refuses the certificate',
      );
      assert.equal(await refused(bases[1] as string), '401', 'with static TLS the handshake passes, the API refuses');
      const proxied = await evil.fetch(`${e.sidecar.proxyUrl}/peer/tenants/evil`).then(
        (r) => String(r.status),
        () => 'handshake refused',
      );
      assert.equal(proxied, 'handshake refused', 'nor is a proxied request let through');
      for (const base of bases) assert.equal((await evaluate(checkout, base)).status, 200, 'another client still is');
    } finally {
      for (const a of agents.values()) await a.close();
      await staticTls.close();
    }
  });
});
