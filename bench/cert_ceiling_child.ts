// Child process for the benchmark: the peer of certificate issuance. A bare Fastify HTTPS route
// that reads a PKCS#10 CSR, checks its signature and signs a one-hour certificate with one URI SAN
// using @peculiar/x509 directly: no client authentication, no storage, no audit.
import { webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import * as x509 from '@peculiar/x509';
import { MasterKey } from '@latchkey/server';
import { workloadCsr } from '@latchkey/testkit';
import { loadTlsMaterial } from '../packages/server/src/tls/local_tls.ts';
import { reportCpuOnRequest } from './cpu.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-cert-'));
const tls = await loadTlsMaterial({ dataDir, hosts: [], master: MasterKey.load({ dataDir }) });
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const caKeys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
const ca = await x509.X509CertificateGenerator.createSelfSigned({
  serialNumber: '01',
  name: 'CN=peer CA',
  keys: caKeys,
  signingAlgorithm: alg,
  extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
});
const app = Fastify({ https: { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' } });
let serial = 1;
app.post('/workload/certificate', async (request, reply) => {
  const csr = new x509.Pkcs10CertificateRequest((request.body as { csr: string }).csr);
  if (!(await csr.verify())) return reply.code(400).send({ error: 'invalid_request' });
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(2, '0'),
    subject: 'CN=svc',
    issuer: ca.subject,
    notBefore: new Date(now - 30_000),
    notAfter: new Date(now + 3_600_000),
    signingAlgorithm: alg,
    publicKey: await csr.publicKey.export(),
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://bench/svc/x' }]),
    ],
  });
  return reply.header('cache-control', 'no-store').send({ certificate: cert.toString('pem') });
});
await app.listen({ port: 0, host: '127.0.0.1' });
const port = (app.server.address() as { port: number }).port;
reportCpuOnRequest(
  {
    url: `https://127.0.0.1:${port}/workload/certificate`,
    authorization: '',
    body: JSON.stringify({ csr: (await workloadCsr()).csrPem }),
    contentType: 'application/json',
    tokenBytes: 0,
  },
  async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  },
);
