import { KeyObject, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALGS = {
  'P-256': { gen: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  Ed25519: { gen: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
  RSA: {
    gen: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    sign: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  },
} as const;

/** A fresh key pair and a PKCS#10 request for it: no subject, unless `cn` or other `names` are asked for (the IdP ignores them, and flags them). */
export async function workloadCsr(
  keyType: keyof typeof ALGS = 'P-256',
  names: x509.JsonGeneralNames = [],
  cn?: string,
): Promise<{ keyPem: string; csrPem: string }> {
  const a = ALGS[keyType];
  const keys = (await webcrypto.subtle.generateKey(a.gen as EcKeyGenParams, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    ...(cn !== undefined ? { name: `CN=${cn}` } : {}),
    keys,
    signingAlgorithm: a.sign as EcdsaParams,
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  } as x509.Pkcs10CertificateRequestCreateParams);
  return {
    keyPem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string,
    csrPem: csr.toString('pem'),
  };
}
