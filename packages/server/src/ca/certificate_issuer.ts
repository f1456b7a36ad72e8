import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { serviceSpiffeId } from '@latchkey/protocol';
import { OAuthError, invalidRequest } from '../errors.ts';
import { randomSerial, type CaSigner } from './workload_ca.ts';

export interface IssuedCertificate {
  pem: string;
  spiffeId: string;
  serial: string;
  notAfter: Date;
  keyType: 'P-256' | 'Ed25519' | 'RSA';
  /** Names the CSR asked for that are not the caller's own identity (ignored, and reported). */
  requestedOther: string[];
}

function keyTypeOf(alg: { name?: string; namedCurve?: string; modulusLength?: number }): IssuedCertificate['keyType'] {
  if (alg.name === 'ECDSA' && alg.namedCurve === 'P-256') return 'P-256';
  if (alg.name === 'Ed25519') return 'Ed25519';
  if ((alg.name === 'RSASSA-PKCS1-v1_5' || alg.name === 'RSA-PSS') && (alg.modulusLength ?? 0) >= 2048) return 'RSA';
  throw new OAuthError('invalid_request', 'the CSR key must be P-256, Ed25519 or RSA of at least 2048 bits');
}

/**
 * Issues an X.509-SVID for `clientId` from a PKCS#10 request: the CSR's signature must verify
 * (proof of possession of the key), every name it asks for is ignored, and the certificate's only
 * SAN is the caller's SPIFFE ID, with serverAuth + clientAuth and a short lifetime.
 */
export async function issueWorkloadCertificate(
  ca: CaSigner,
  csrPem: string,
  clientId: string,
  options: { trustDomain: string; ttlSeconds: number; now: number },
): Promise<IssuedCertificate> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch {
    throw invalidRequest('csr must be a PEM PKCS#10 certificate request');
  }
  let alg: { name?: string; namedCurve?: string; modulusLength?: number };
  let publicKey: CryptoKey;
  try {
    publicKey = await csr.publicKey.export(webcrypto as unknown as Crypto);
    alg = publicKey.algorithm as typeof alg;
  } catch {
    throw new OAuthError('invalid_request', 'the CSR key must be P-256, Ed25519 or RSA of at least 2048 bits');
  }
  const keyType = keyTypeOf(alg);
  let ok = false;
  try {
    ok = await csr.verify(webcrypto as unknown as Crypto);
  } catch {
    ok = false;
  }
  if (!ok) throw invalidRequest('the CSR signature does not verify (proof of possession of the key)');
  const spiffeId = serviceSpiffeId(options.trustDomain, clientId);
  // The CSR carries its SAN in an extensionRequest attribute (RFC 2986 §5.4.1, RFC 2985 §5.4.2).
  const sanRaw = csr.getExtension('2.5.29.17');
  const san = sanRaw ? new x509.SubjectAlternativeNameExtension(sanRaw.rawData) : undefined;
  const requested = [
    ...(san?.names.items ?? []).map((n: { value: unknown }) => String(n.value)),
    ...csr.subjectName.getField('CN'),
  ];
  const requestedOther = requested
    .filter((n) => n !== spiffeId && n !== clientId)
    .map((n) => n.slice(0, 256))
    .slice(0, 10);
  const { now } = options;
  // Never beyond the issuing CA's own validity (an operator's intermediate may end sooner).
  const notAfter = new Date(Math.min(now + options.ttlSeconds * 1000, ca.cert.notAfter.getTime()));
  const serial = randomSerial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${clientId.replace(/[,=+<>#;"\\]/g, '_')}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - 30_000),
    notAfter,
    signingAlgorithm: ca.signingAlgorithm,
    publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | (keyType === 'RSA' ? x509.KeyUsageFlags.keyEncipherment : 0),
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ],
  });
  // The leaf, then the intermediates a peer needs to reach a root of the bundle.
  return { pem: `${cert.toString('pem')}\n${ca.chainPem}`, spiffeId, serial, notAfter, keyType, requestedOther };
}
