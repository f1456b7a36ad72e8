import * as x509 from '@peculiar/x509';
import type { MasterKey } from '../keys/master_key.ts';
import type { SettingsStore } from '../storage/ports.ts';
import { createRootCa, importCaKey } from './root_ca.ts';

export { randomSerial } from './root_ca.ts';

const SETTING = 'ca.workload';
const SEAL_LABEL = 'workload-ca';

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
    const root = await createRootCa(`CN=Latchkey workload CA, O=${trustDomain.replace(/[,=+<>#;"\\]/g, '')}`);
    stored = await store.setSettingIfAbsent(SETTING, JSON.stringify({ cert: root.certPem, key: master.seal(Buffer.from(root.keyPem), SEAL_LABEL) }));
  }
  const { cert: certPem, key: sealed } = JSON.parse(stored) as { cert: string; key: string };
  const key = await importCaKey(master.open(sealed, SEAL_LABEL).toString('utf8'));
  return { cert: new x509.X509Certificate(certPem), key, bundlePem: certPem };
}
