import { KeyObject, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** Both of the IdP's CAs (local HTTPS and workload) sign with ECDSA P-256. */
export const CA_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
export const DAY_MS = 86_400_000;

/** PKCS#8 PEM of a WebCrypto private key. */
export const pkcs8Pem = (key: CryptoKey): string =>
  KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string;

/** A positive 128-bit serial (RFC 5280 §4.1.2.2: at most 20 octets, positive). */
export const randomSerial = (): string =>
  Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '7');

/** A P-256 signing key from PKCS#8 PEM. */
export async function importCaKey(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, CA_ALG, true, ['sign']) as Promise<CryptoKey>;
}

/** A new self-signed root (CA:TRUE, path length 0, keyCertSign + cRLSign), valid ten years. */
export async function createRootCa(
  name: string,
  /** Epoch milliseconds it is made at. */
  now: number,
): Promise<{ cert: x509.X509Certificate; key: CryptoKey; certPem: string; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(CA_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3650 * DAY_MS),
    signingAlgorithm: CA_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, key: keys.privateKey, certPem: `${cert.toString('pem')}\n`, keyPem: pkcs8Pem(keys.privateKey) };
}
