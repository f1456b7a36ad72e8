import { webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { LatchkeyError } from '../errors.ts';
import type { MasterKey } from '../keys/master_key.ts';
import {
  CA_ALG as ALG,
  DAY_MS as DAY,
  createRootCa,
  importCaKey,
  randomSerial as serial,
  pkcs8Pem,
} from '../ca/root_ca.ts';

export interface TlsMaterial {
  cert: string;
  key: string;
  /** The local CA certificate (also written to `<data>/ca.pem`), when the local CA issued `cert`. */
  caPem?: string;
}

/** Creates the local CA once; its key is sealed with the master key. */
async function loadOrCreateCa(
  dataDir: string,
  master: MasterKey,
): Promise<{ cert: x509.X509Certificate; key: CryptoKey; pem: string }> {
  const certFile = join(dataDir, 'ca.pem');
  const keyFile = join(dataDir, 'ca.key.sealed');
  if (existsSync(certFile) && existsSync(keyFile)) {
    const pem = readFileSync(certFile, 'utf8');
    const keyPem = master.open(readFileSync(keyFile, 'utf8').trim(), 'local-ca').toString('utf8');
    return { cert: new x509.X509Certificate(pem), key: await importCaKey(keyPem), pem };
  }
  // The IdP's own HTTPS certificates are judged by TLS peers on their clocks: system time, not an injected clock.
  const root = await createRootCa('CN=Latchkey local CA, O=Latchkey', Date.now());
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(keyFile, `${master.seal(Buffer.from(root.keyPem), 'local-ca')}\n`, { mode: 0o600 });
  writeFileSync(certFile, root.certPem, { mode: 0o644 });
  return { cert: root.cert, key: root.key, pem: root.certPem };
}

/** Whether a server certificate is still good for the hosts and for at least 7 more days. */
function serverCertUsable(pem: string, hosts: string[]): boolean {
  try {
    const c = new NodeX509(pem);
    if (Date.parse(c.validTo) - Date.now() < 7 * DAY) return false;
    return hosts.every((h) => (isIP(h) ? c.checkIP(h) !== undefined : c.checkHost(h) !== undefined));
  } catch {
    return false;
  }
}

/**
 * HTTPS material: the operator's certificate and key when given, else a 90-day server
 * certificate for `hosts` issued by a local CA kept in the data folder (re-issued when it
 * nears expiry or the hosts change).
 */
export async function loadTlsMaterial(options: {
  dataDir: string;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  hosts: string[];
  master: MasterKey;
}): Promise<TlsMaterial> {
  if (options.certFile && options.keyFile) {
    try {
      return { cert: readFileSync(options.certFile, 'utf8'), key: readFileSync(options.keyFile, 'utf8') };
    } catch (err) {
      throw new LatchkeyError(
        'tls_material_invalid',
        `cannot read LATCHKEY_TLS_CERT/LATCHKEY_TLS_KEY: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  const ca = await loadOrCreateCa(options.dataDir, options.master);
  const hosts = [...new Set(['localhost', '127.0.0.1', '::1', ...options.hosts])];
  const certFile = join(options.dataDir, 'server.pem');
  const keyFile = join(options.dataDir, 'server.key.sealed');
  if (existsSync(certFile) && existsSync(keyFile)) {
    const cert = readFileSync(certFile, 'utf8');
    if (serverCertUsable(cert, hosts)) {
      return {
        cert,
        key: options.master.open(readFileSync(keyFile, 'utf8').trim(), 'local-tls').toString('utf8'),
        caPem: ca.pem,
      };
    }
  }
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: 'CN=Latchkey IdP',
    issuer: ca.cert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 90 * DAY),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        hosts.map((h) => (isIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = `${cert.toString('pem')}\n${ca.pem}`;
  const keyPem = pkcs8Pem(keys.privateKey);
  writeFileSync(certFile, certPem, { mode: 0o644 });
  writeFileSync(keyFile, `${options.master.seal(Buffer.from(keyPem), 'local-tls')}\n`, { mode: 0o600 });
  return { cert: certPem, key: keyPem, caPem: ca.pem };
}
