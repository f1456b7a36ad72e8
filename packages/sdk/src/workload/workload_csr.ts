import { KeyObject, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** Key types the workload CA certifies. */
export type WorkloadKeyType = 'P-256' | 'Ed25519' | 'RSA';

const KEY_ALGORITHMS: Record<
  WorkloadKeyType,
  { gen: EcKeyGenParams | Algorithm | RsaHashedKeyGenParams; sign: EcdsaParams | Algorithm }
> = {
  'P-256': {
    gen: { name: 'ECDSA', namedCurve: 'P-256' } as EcKeyGenParams,
    sign: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
  },
  Ed25519: { gen: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
  RSA: {
    gen: {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    } as RsaHashedKeyGenParams,
    sign: { name: 'RSASSA-PKCS1-v1_5' },
  },
};

/**
 * A fresh key pair, made here, and a PKCS#10 request for it that names no one: the IdP certifies
 * the caller's own SPIFFE ID whatever a CSR names, and flags a CSR that names anyone else. What
 * `createWorkloadIdentity` and `latchkey cert issue` send; the private key never leaves.
 *
 * @example
 * ```ts
 * const { privateKeyPem, csrPem } = await createWorkloadCsr('Ed25519');
 * ```
 */
export async function createWorkloadCsr(
  keyType: WorkloadKeyType = 'P-256',
): Promise<{ privateKeyPem: string; csrPem: string }> {
  const alg = KEY_ALGORITHMS[keyType];
  const keys = (await webcrypto.subtle.generateKey(alg.gen, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: alg.sign as Algorithm,
  } as x509.Pkcs10CertificateRequestCreateParams);
  return {
    privateKeyPem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string,
    csrPem: csr.toString('pem'),
  };
}
