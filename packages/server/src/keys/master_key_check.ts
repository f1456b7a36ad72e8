import { LatchkeyError } from '../errors.ts';
import type { KeyStore, SettingsStore } from '../storage/ports.ts';
import type { MasterKey } from './master_key.ts';

const SETTING = 'master_key.check';
const AAD = 'master-key-check';
const PLAIN = 'latchkey master key';

const wrongKey = (cause: unknown) =>
  new LatchkeyError(
    'master_key_invalid',
    'this database was sealed with another master key: start the IdP with the master key it was made with ' +
      '(LATCHKEY_MASTER_KEY, or the master.key file of its data folder); a restored backup needs the master key of the deployment it came from',
    { cause },
  );

/**
 * Refuses to start with a master key other than the one the database was sealed with: a value
 * sealed at the first start is opened at every start. A database from before the check is proven
 * by opening one of its signing keys instead, then gets the check.
 */
export async function checkMasterKey(
  store: Pick<SettingsStore, 'getSetting' | 'setSettingIfAbsent'> & Pick<KeyStore, 'listKeys'>,
  master: Pick<MasterKey, 'seal' | 'open'>,
): Promise<void> {
  let sealed = await store.getSetting(SETTING);
  if (sealed === undefined) {
    const key = (await store.listKeys())[0];
    if (key) {
      try {
        master.open(key.privateKeyEnc, `signing-key:${key.kid}`);
      } catch (err) {
        throw wrongKey(err);
      }
    }
    sealed = await store.setSettingIfAbsent(SETTING, master.seal(Buffer.from(PLAIN), AAD));
  }
  try {
    if (master.open(sealed, AAD).toString() !== PLAIN) throw new Error('unexpected content');
  } catch (err) {
    throw wrongKey(err);
  }
}
