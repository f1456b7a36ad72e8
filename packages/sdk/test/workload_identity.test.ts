import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { assertTlsProfile, startTestIdp, tlsFetch, type TestIdp } from '@latchkey/testkit';
import { FakeClock } from '@latchkey/testkit';
import { createWorkloadIdentity, peerSpiffeId, type WorkloadIdentity } from '@latchkey/sdk/workload';
import { createTokenClient } from '@latchkey/sdk/token-client';
import { createVerifier } from '@latchkey/sdk/verify';
import { authenticate } from '@latchkey/sdk/node';

const run = promisify(execFile);

/** GET over an identity's https.Agent (the node:https path; `identity.fetch` is the undici one). */
function getWithAgent(identity: WorkloadIdentity, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent: identity.agent }, (res) => {
        let body = '';
        res
          .setEncoding('utf8')
          .on('data', (d: string) => (body += d))
          .on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

/** fetch rejects only when no HTTP answer came: the TLS connection itself was refused or cut. */
const refusedOnTheWire = (err: Error): boolean =>
  err.message === 'fetch failed' && (err as { cause?: unknown }).cause !== undefined;
/** curl's exit codes for a TLS handshake the server refused (35) or cut right after it (56). */
const curlHandshakeRefused = (err: { code?: number }): boolean => err.code === 35 || err.code === 56;

describe('workload identity: two services over mTLS while their certificates rotate', () => {
  let t: TestIdp;
  const TD = 'mesh.test';
  const creds: Record<string, { clientId: string; clientSecret: string }> = {};
  const ids: WorkloadIdentity[] = [];

  before(async () => {
    // Six-second certificates: each service renews about every three seconds.
    t = await startTestIdp({ config: { trustDomain: TD, workloadCertTtl: 6 } });
    for (const name of ['orders', 'checkout', 'intruder']) {
      const r = (await t.register({ client_id: name, audiences: ['https://orders.internal'] })) as Record<
        string,
        string
      >;
      creds[name] = { clientId: r.client_id!, clientSecret: r.client_secret! };
    }
  });
  after(async () => {
    for (const id of ids) await id.close();
    await t.close();
  });

  const identity = async (name: string, peers: string[]): Promise<WorkloadIdentity> => {
    const id = await createWorkloadIdentity({
      issuer: t.issuer,
      credentials: creds[name]!,
      idpCa: t.caPem!,
      authorizePeer: peers.map((p) => `spiffe://${TD}/svc/${p}`),
    });
    ids.push(id);
    return id;
  };

  test("requests flow without a single failure through certificate rotations on each side and a CA root rotation; each side sees the other's verified SPIFFE ID", {
    timeout: 90_000,
  }, async () => {
    const orders = await identity('orders', ['checkout']);
    const checkout = await identity('checkout', ['orders']);
    assert.equal(orders.spiffeId, `spiffe://${TD}/svc/orders`);
    const server = orders.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ caller: peerSpiffeId(req), serial: orders.certificate.serial }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/hello`;
    const serialsSeen = new Set<string>();
    const clientSerials = new Set<string>();
    let ok = 0;
    const failures: string[] = [];
    let stop = false;
    const worker = async (useAgent: boolean) => {
      while (!stop) {
        try {
          clientSerials.add(checkout.certificate.serial);
          const r = useAgent
            ? await getWithAgent(checkout, url)
            : await checkout.fetch(url).then(async (res) => ({ status: res.status, body: await res.text() }));
          if (r.status !== 200) failures.push(`HTTP ${r.status}`);
          else {
            const body = JSON.parse(r.body) as { caller: string; serial: string };
            assert.equal(body.caller, `spiffe://${TD}/svc/checkout`);
            serialsSeen.add(body.serial);
            ok++;
          }
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const workers = [worker(false), worker(false), worker(true), worker(true)];
    const deadline = Date.now() + 60_000;
    // Real time on purpose: continuous traffic across rotations is what this proves. With a fake
    // clock the rotations came milliseconds apart and a handshake now and then met a connection
    // closed under it ("other side closed", about one run in five on a loaded machine).
    const until = async (done: () => boolean) => {
      while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    };
    await until(() => orders.health().rotations >= 1 && checkout.health().rotations >= 1);
    // The CA's root rotates too: announced for 4 s (longer than a renewal interval), then it signs.
    const firstIssuer = new X509Certificate(orders.certificate.pem).issuer;
    const rot = await t.fetch(`${t.issuer}/admin/ca/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ announce_seconds: 4 }),
    });
    assert.equal(rot.status, 200);
    const newIssuer = (id: WorkloadIdentity) => new X509Certificate(id.certificate.pem).issuer !== firstIssuer;
    await until(
      () =>
        orders.health().rotations >= 4 && checkout.health().rotations >= 4 && newIssuer(orders) && newIssuer(checkout),
    );
    assert.ok(newIssuer(orders) && newIssuer(checkout), 'both sides hold certificates from the new root');
    // Keep going a little past the last rotation.
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(workers);
    server.close();
    assert.deepEqual(failures, []);
    assert.ok(
      orders.health().rotations >= 4 && checkout.health().rotations >= 4,
      JSON.stringify([orders.health(), checkout.health()]),
    );
    assert.ok(serialsSeen.size >= 4, `the server answered with ${serialsSeen.size} different certificates`);
    assert.ok(clientSerials.size >= 4);
    assert.ok(ok > 100, `${ok} requests`);
    // Renewals are routine: no detector takes them for an identity mismatch.
    await t.idp.detection.pass();
    const alerts = (
      (await (
        await t.fetch(`${t.issuer}/admin/alerts`, { headers: { authorization: `Bearer ${t.adminToken}` } })
      ).json()) as { alerts: unknown[] }
    ).alerts;
    assert.deepEqual(alerts, []);
    console.log(
      `# ${ok} requests, 0 failures; server certificates ${serialsSeen.size}, client certificates ${clientSerials.size}`,
    );
  });

  test('a peer outside the allowlist is refused on both sides, and a client without a certificate too', async () => {
    const orders = await identity('orders', ['checkout']);
    const intruder = await identity('intruder', ['orders']);
    const server = orders.createServer((_req, res) => res.end('hi'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    // The intruder's certificate is valid (same CA), but it is not an allowed caller.
    await assert.rejects(intruder.fetch(url), refusedOnTheWire);
    // A client that only trusts checkout refuses to talk to orders.
    const picky = await createWorkloadIdentity({
      issuer: t.issuer,
      credentials: creds.intruder!,
      idpCa: t.caPem!,
      authorizePeer: [`spiffe://${TD}/svc/checkout`],
    });
    ids.push(picky);
    await assert.rejects(picky.fetch(url), (err: Error) =>
      /not an allowed peer/.test(String((err as { cause?: Error }).cause?.message ?? err.message)),
    );
    // No certificate at all.
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-wl-'));
    try {
      writeFileSync(join(dir, 'bundle.pem'), orders.trustBundlePem);
      await assert.rejects(run('curl', ['-sS', '-k', '--max-time', '5', url]), curlHandshakeRefused);
      // curl with a certificate the CA issued to an allowed identity gets through.
      const checkout = await identity('checkout', ['orders']);
      writeFileSync(join(dir, 'cert.pem'), checkout.certificate.pem);
      writeFileSync(join(dir, 'key.pem'), checkout.clientOptions().key as string);
      const r = await run('curl', [
        '-sS',
        '-k',
        '--max-time',
        '5',
        '--cert',
        join(dir, 'cert.pem'),
        '--key',
        join(dir, 'key.pem'),
        url,
      ]);
      assert.equal(r.stdout, 'hi');
      // openssl checks the server's chain against the bundle (the SVID has no DNS name for curl to check).
      const s = await run('sh', [
        '-c',
        `echo | openssl s_client -connect 127.0.0.1:${(server.address() as AddressInfo).port} -CAfile ${join(dir, 'bundle.pem')} -cert ${join(dir, 'cert.pem')} -key ${join(dir, 'key.pem')} -verify_return_error 2>&1`,
      ]);
      assert.match(s.stdout, /Verify return code: 0 \(ok\)/);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('TLS 1.1 and CBC-only clients are refused by an SDK server; TLS 1.2 with a modern cipher works', async () => {
    const orders = await identity('orders', ['checkout']);
    const checkout = await identity('checkout', ['orders']);
    const server = orders.createServer((_req, res) => res.end('hi'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-wl-'));
    try {
      writeFileSync(join(dir, 'cert.pem'), checkout.certificate.pem);
      writeFileSync(join(dir, 'key.pem'), checkout.clientOptions().key as string);
      await assertTlsProfile(port, `-cert ${join(dir, 'cert.pem')} -key ${join(dir, 'key.pem')}`);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('certificate-bound tokens from the token client over the workload identity: a service verifies each over its certificate, across rotations', {
    timeout: 60_000,
  }, async () => {
    // Everyone's time is one fake clock, advanced a second per call: two renewals take a moment.
    const clock = new FakeClock();
    const idp = await startTestIdp({ config: { trustDomain: TD, workloadCertTtl: 16 }, clock });
    const held: WorkloadIdentity[] = [];
    try {
      const AUD = 'https://orders.internal';
      const reg = async (name: string) =>
        (await idp.register({ client_id: name, audiences: [AUD] })) as Record<string, string>;
      const o = await reg('orders');
      const c = await reg('checkout');
      const orders = await createWorkloadIdentity({
        issuer: idp.issuer,
        credentials: { clientId: 'orders', clientSecret: o.client_secret! },
        idpCa: idp.caPem!,
        clock,
      });
      const checkout = await createWorkloadIdentity({
        issuer: idp.issuer,
        credentials: { clientId: 'checkout', clientSecret: c.client_secret! },
        idpCa: idp.caPem!,
        authorizePeer: [`spiffe://${TD}/svc/orders`],
        clock,
      });
      held.push(orders, checkout);
      const verifier = await createVerifier({ issuer: idp.issuer, audience: AUD, fetch: tlsFetch(idp.caPem), clock });
      const seen = new Set<string>();
      const server = orders.createServer(async (req, res) => {
        const claims = await authenticate(req, res, { verifier });
        if (!claims) return;
        seen.add(claims.cnf!['x5t#S256']);
        res.end('ok');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/orders`;
      const tokens = createTokenClient({
        issuer: idp.issuer,
        clientId: 'checkout',
        clientSecret: c.client_secret!,
        workload: checkout,
        clock,
      });
      const call = tokens.fetchFor({ audience: AUD });
      let ok = 0;
      const failures: string[] = [];
      const deadline = Date.now() + 45_000;
      const once = async () => {
        const r = await call(url).catch((e: Error) => ({ status: 0, text: async () => e.message }));
        if (r.status === 200) ok++;
        else failures.push(`${r.status} ${await r.text()}`);
      };
      const settled = () => [orders, checkout].every((id) => Date.parse(id.health().nextRenewalAt) > clock.now());
      while (checkout.health().rotations < 2 && Date.now() < deadline) {
        await once();
        clock.advance(1000);
        while (!settled() && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      }
      for (let i = 0; i < 10; i++) await once();
      server.close();
      verifier.close();
      assert.deepEqual(failures, []);
      assert.ok(checkout.health().rotations >= 2);
      // One bound token per certificate the client held (the token client re-obtains after each rotation).
      assert.ok(seen.size >= 3, `tokens bound to ${seen.size} certificates`);
      assert.ok(ok > 20);
    } finally {
      for (const h of held) await h.close();
      await idp.close();
    }
  });

  test('a revoked client: its open mTLS connection is closed within a second and it cannot reconnect, although its certificate has not expired', {
    timeout: 30_000,
  }, async () => {
    const idp = await startTestIdp({ config: { trustDomain: TD, workloadCertTtl: 600 } });
    const held: WorkloadIdentity[] = [];
    try {
      const o = (await idp.register({ client_id: 'orders', audiences: ['https://x.internal'] })) as Record<
        string,
        string
      >;
      const c = (await idp.register({ client_id: 'checkout', audiences: ['https://x.internal'] })) as Record<
        string,
        string
      >;
      // The orders service follows the revocation feed with its verifier, and gives it to its identity.
      const verifier = await createVerifier({
        issuer: idp.issuer,
        audience: 'https://x.internal',
        fetch: tlsFetch(idp.caPem),
        credentials: { clientId: 'orders', clientSecret: o.client_secret! },
      });
      const orders = await createWorkloadIdentity({
        issuer: idp.issuer,
        credentials: { clientId: 'orders', clientSecret: o.client_secret! },
        idpCa: idp.caPem!,
        revocations: verifier,
      });
      const checkout = await createWorkloadIdentity({
        issuer: idp.issuer,
        credentials: { clientId: 'checkout', clientSecret: c.client_secret! },
        idpCa: idp.caPem!,
      });
      held.push(orders, checkout);
      const server = orders.createServer((_req, res) => res.end('hi'));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      // One long-lived TLS connection from checkout.
      const { connect } = await import('node:tls');
      const socket = connect({ ...checkout.clientOptions(), host: '127.0.0.1', port });
      await new Promise<void>((r, j) => socket.once('secureConnect', () => r()).once('error', j));
      const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
      assert.equal(await (await checkout.fetch(`https://127.0.0.1:${port}/`)).text(), 'hi');
      const revokedAt = Date.now();
      const res = await idp.fetch(`${idp.issuer}/admin/clients/checkout/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${idp.adminToken}` },
      });
      assert.equal(res.status, 200);
      const closedAt = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 3000))]);
      assert.ok(closedAt > 0 && closedAt - revokedAt < 1000, `closed ${closedAt - revokedAt} ms after the revocation`);
      // Its certificate is still within its lifetime, but it no longer gets in.
      assert.ok(checkout.certificate.notAfter.getTime() > Date.now() + 500_000);
      await assert.rejects(checkout.fetch(`https://127.0.0.1:${port}/`), refusedOnTheWire);
      server.close();
      verifier.close();
    } finally {
      for (const h of held) await h.close();
      await idp.close();
    }
  });

  test('credentials as a token client (Bearer with the workload scope); Ed25519 and RSA keys work for mutual TLS', async () => {
    const reg = (await t.register({
      client_id: 'inventory',
      audiences: ['https://orders.internal'],
      scope: 'workload',
    })) as Record<string, string>;
    const tokenClient = createTokenClient({
      issuer: t.issuer,
      clientId: 'inventory',
      clientSecret: reg.client_secret!,
      fetch: tlsFetch(t.caPem),
    });
    const ed = await createWorkloadIdentity({
      issuer: t.issuer,
      credentials: { tokenClient },
      idpCa: t.caPem!,
      keyType: 'Ed25519',
    });
    const rsa = await createWorkloadIdentity({
      issuer: t.issuer,
      credentials: creds.checkout!,
      idpCa: t.caPem!,
      keyType: 'RSA',
    });
    ids.push(ed, rsa);
    assert.equal(ed.spiffeId, `spiffe://${TD}/svc/inventory`);
    assert.equal(new X509Certificate(ed.certificate.pem).publicKey.asymmetricKeyType, 'ed25519');
    assert.equal(new X509Certificate(rsa.certificate.pem).publicKey.asymmetricKeyType, 'rsa');
    const server = ed.createServer((req, res) => res.end(peerSpiffeId(req)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const res = await rsa.fetch(`https://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      assert.equal(await res.text(), `spiffe://${TD}/svc/checkout`);
      await ed.renew();
      assert.equal(ed.health().rotations, 1);
    } finally {
      server.close();
    }
  });

  test('the IdP down: renewals back off and the current certificate stays in use; they succeed once it is back', {
    timeout: 60_000,
  }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-wl-idp-'));
    const { freePort } = await import('@latchkey/testkit');
    const port = await freePort();
    let idp = await startTestIdp({ dataDir, port, config: { trustDomain: TD, workloadCertTtl: 8 } });
    try {
      const r = (await idp.register({ client_id: 'ledger', audiences: ['https://x.internal'] })) as Record<
        string,
        string
      >;
      const errors: string[] = [];
      // The identity's time (renewal point, backoff, expiry) is a fake clock; its I/O is real.
      const clock = new FakeClock();
      const id = await createWorkloadIdentity({
        issuer: idp.issuer,
        credentials: { clientId: 'ledger', clientSecret: r.client_secret! },
        idpCa: idp.caPem!,
        retry: { min: 200, max: 1000 },
        onError: (e) => errors.push(e.message),
        clock,
      });
      ids.push(id);
      const first = id.certificate.serial;
      const expiresAt = id.certificate.notAfter.getTime();
      await idp.close();
      /** Waits for the renewal the clock just started (a network round trip), never for time to pass. */
      const settled = async (done: () => boolean) => {
        const deadline = Date.now() + 10_000;
        while (!done() && Date.now() < deadline) await new Promise((res) => setImmediate(res));
        assert.ok(done(), JSON.stringify(id.health()));
      };
      // Past the renewal point (about half of 8 s), with the IdP gone: the renewal fails...
      clock.advance(Date.parse(id.health().nextRenewalAt) + 1 - clock.now());
      await settled(() => id.health().failedRenewals >= 1);
      // ...and is retried after its backoff (at most 1 s here), failing again.
      clock.advance(1000);
      await settled(() => id.health().failedRenewals >= 2);
      assert.equal(id.certificate.serial, first, 'the current certificate stays in use');
      assert.equal(id.health().ok, true, 'and is still valid');
      assert.ok(errors.length >= 2);
      assert.ok(Date.parse(id.health().nextRenewalAt) < expiresAt, 'a retry is due before the certificate expires');
      idp = await startTestIdp({ dataDir, port, config: { trustDomain: TD, workloadCertTtl: 8 } });
      clock.advance(Date.parse(id.health().nextRenewalAt) + 1 - clock.now());
      await settled(() => id.certificate.serial !== first);
      assert.notEqual(id.certificate.serial, first);
      assert.equal(id.health().lastError, null);
    } finally {
      await idp.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
