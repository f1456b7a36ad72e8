import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import * as x509 from '@peculiar/x509';
import { basicAuth, startTestIdp, type TestIdp, auditEvents } from '@latchkey/testkit';

const run = promisify(execFile);
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

async function csr(
  alg: EcKeyGenParams | RsaHashedKeyGenParams | { name: 'Ed25519' },
  names: x509.JsonGeneralNames = [],
  cn = 'anything',
): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(alg as EcKeyGenParams, true, ['sign', 'verify'])) as CryptoKeyPair;
  const signingAlgorithm =
    alg.name === 'ECDSA'
      ? { name: 'ECDSA', hash: 'SHA-256' }
      : alg.name === 'Ed25519'
        ? { name: 'Ed25519' }
        : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const req = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${cn}`,
    keys,
    signingAlgorithm,
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return req.toString('pem');
}

describe('workload CA: SPIFFE X.509-SVIDs for registered clients, checked by openssl', () => {
  let t: TestIdp;
  let svc: Record<string, any>;
  let dir: string;
  const issue = (body: unknown, auth = basicAuth(svc.client_id, svc.client_secret)) =>
    t.fetch(`${t.issuer}/workload/certificate`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  before(async () => {
    t = await startTestIdp({ config: { trustDomain: 'prod.example', workloadCertTtl: 600 } });
    svc = await t.register({ client_id: 'orders', audiences: ['https://x.internal'] });
    dir = mkdtempSync(join(tmpdir(), 'latchkey-svid-'));
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('P-256, Ed25519 and RSA-2048 CSRs get a certificate openssl verifies against /ca/bundle, with only the SPIFFE ID and both EKUs', async () => {
    const bundle = await (await t.fetch(`${t.issuer}/ca/bundle`)).text();
    assert.match(bundle, /^-----BEGIN CERTIFICATE-----/);
    writeFileSync(join(dir, 'bundle.pem'), bundle);
    for (const alg of [
      { name: 'ECDSA', namedCurve: 'P-256' },
      { name: 'Ed25519' },
      { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    ] as const) {
      const res = await issue({ csr: await csr(alg as never) });
      assert.equal(res.status, 200, alg.name);
      const body = (await res.json()) as {
        certificate: string;
        spiffe_id: string;
        expires_at: number;
        trust_bundle: string;
      };
      assert.equal(body.spiffe_id, 'spiffe://prod.example/svc/orders');
      assert.ok(Math.abs(body.expires_at - (Date.now() / 1000 + 600)) < 10);
      writeFileSync(join(dir, 'leaf.pem'), body.certificate);
      const verified = await run('openssl', [
        'verify',
        '-CAfile',
        join(dir, 'bundle.pem'),
        '-purpose',
        'sslclient',
        join(dir, 'leaf.pem'),
      ]);
      assert.match(verified.stdout, /leaf\.pem: OK/);
      const text = (await run('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text'])).stdout;
      assert.match(text, /URI:spiffe:\/\/prod\.example\/svc\/orders\s*$/m);
      assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
      assert.match(text, /CA:FALSE/);
    }
  });

  test("a CSR asking for another identity gets the caller's own SPIFFE ID only, and an alert", async () => {
    const res = await issue({
      csr: await csr(
        { name: 'ECDSA', namedCurve: 'P-256' },
        [
          { type: 'url', value: 'spiffe://prod.example/svc/payments' },
          { type: 'dns', value: 'payments.internal' },
        ],
        'payments',
      ),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { certificate: string };
    const cert = new x509.X509Certificate(body.certificate);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    assert.deepEqual(san.names.toJSON(), [{ type: 'url', value: 'spiffe://prod.example/svc/orders' }]);
    const issued = await auditEvents(t.idp.storage, { type: 'certificate.issued', limit: 10 });
    assert.deepEqual(issued.at(-1)!.detail!.requested_other, [
      'spiffe://prod.example/svc/payments',
      'payments.internal',
      'payments',
    ]);
    await t.idp.detection.pass();
    const alerts = (
      (await (
        await t.fetch(`${t.issuer}/admin/alerts?detector=identity_mismatch`, {
          headers: { authorization: `Bearer ${t.adminToken}` },
        })
      ).json()) as { alerts: { key: string }[] }
    ).alerts;
    assert.deepEqual(
      alerts.map((a) => a.key),
      ['client:orders'],
    );
  });

  test('refused: a tampered CSR (no proof of possession), a weak key, no credentials, a revoked client', async () => {
    const good = await csr({ name: 'ECDSA', namedCurve: 'P-256' });
    const der = Buffer.from(good.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    der[der.length - 5]! ^= 0x01; // inside the signature
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const bad = await issue({ csr: tampered });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error_description: string }).error_description, /proof of possession/);
    const weak = await issue({
      csr: await csr({
        name: 'RSASSA-PKCS1-v1_5',
        modulusLength: 1024,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: 'SHA-256',
      }),
    });
    assert.equal(weak.status, 400);
    assert.equal((await issue({ csr: 'not a csr' })).status, 400);
    assert.equal((await issue({ csr: good, extra: 1 })).status, 400);
    assert.equal(
      (
        await t.fetch(`${t.issuer}/workload/certificate`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ csr: good }),
        })
      ).status,
      401,
    );
    await t.fetch(`${t.issuer}/admin/clients/orders/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}` },
    });
    assert.equal((await issue({ csr: good })).status, 401);
  });
});
