import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { MasterKey } from '../keys/master_key.ts';
import type { SettingsStore } from '../storage/ports.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
const SETTING = 'ca.workload';
const SEAL_LABEL = 'workload-ca';

const toPem = (der: ArrayBuffer, label: string): string =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;

/** A positive 128-bit serial (RFC 5280 §4.1.2.2: at most 20 octets, positive). */
export const randomSerial = (): string => Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '7');

export interface WorkloadCa {
  cert: x509.X509Certificate;
  key: CryptoKey;
  /** The trust bundle (PEM): what `GET /ca/bundle` serves. */
  bundlePem: string;
}

/**
 * The workload CA's root: generated once (P-256, ten years), its key sealed with the master key
 * and both kept in storage — so every replica of one deployment signs with the same root, and
 * the first replica to start creates it (set-if-absent decides a race). An operator-provided
 * root (an intermediate) is not supported yet.
 */
export async function loadOrCreateWorkloadCa(store: Pick<SettingsStore, 'getSetting' | 'setSettingIfAbsent'>, master: MasterKey, trustDomain: string): Promise<WorkloadCa> {
  // Certificate and sealed key in one setting, written once: a replica never sees one without the other.
  let stored = await store.getSetting(SETTING);
  if (!stored) {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name: `CN=Latchkey workload CA, O=${trustDomain.replace(/[,=+<>#;"\\]/g, '')}`,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3650 * DAY),
      signingAlgorithm: ALG,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const keyPem = toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
    stored = await store.setSettingIfAbsent(SETTING, JSON.stringify({ cert: cert.toString('pem') + '\n', key: master.seal(Buffer.from(keyPem), SEAL_LABEL) }));
  }
  const { cert: certPem, key: sealed } = JSON.parse(stored) as { cert: string; key: string };
  const keyPem = master.open(sealed, SEAL_LABEL).toString('utf8');
  const key = (await webcrypto.subtle.importKey('pkcs8', Buffer.from(keyPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64'), ALG, true, ['sign'])) as CryptoKey;
  return { cert: new x509.X509Certificate(certPem), key, bundlePem: certPem };
}
