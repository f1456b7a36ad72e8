import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LatchkeyError } from '../errors.ts';

/** Decodes a 32-byte key given as 64 hex characters or base64/base64url. */
function decodeKey(text: string): Buffer {
  const t = text.trim();
  const buf = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (buf.length !== 32)
    throw new LatchkeyError('master_key_invalid', 'master key must be 32 bytes, as 64 hex characters or base64');
  return buf;
}

/**
 * The master key seals private keys at rest (AES-256-GCM) and keys the secret hash. From
 * LATCHKEY_MASTER_KEY, else a 0600 file in the data folder, created on first start.
 */
export class MasterKey {
  private readonly sealKey: Buffer;
  /** Key of the HMAC that hashes client secrets and registration tokens. */
  readonly secretHashKey: Buffer;

  private constructor(material: Buffer) {
    this.sealKey = Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), 'latchkey/seal/v1', 32));
    this.secretHashKey = Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), 'latchkey/secret-hash/v1', 32));
  }

  static load(options: { masterKey?: string | undefined; dataDir: string }): MasterKey {
    if (options.masterKey) return new MasterKey(decodeKey(options.masterKey));
    const file = join(options.dataDir, 'master.key');
    if (!existsSync(file)) {
      mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
      // 'wx' fails if another process created it first; then we read theirs.
      try {
        writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        if ((err as { code?: string }).code !== 'EEXIST') throw err;
      }
    }
    return new MasterKey(decodeKey(readFileSync(file, 'utf8')));
  }

  /** Seals bytes: `v1.<iv>.<ciphertext+tag>` in base64url, with `aad` bound to the ciphertext. */
  seal(plain: Buffer, aad: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.sealKey, iv);
    cipher.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return `v1.${iv.toString('base64url')}.${ct.toString('base64url')}`;
  }

  open(sealed: string, aad: string): Buffer {
    const [v, ivText, ctText] = sealed.split('.');
    if (v !== 'v1' || !ivText || !ctText)
      throw new LatchkeyError('key_decrypt_failed', 'sealed key has an unknown format');
    try {
      const ct = Buffer.from(ctText, 'base64url');
      const decipher = createDecipheriv('aes-256-gcm', this.sealKey, Buffer.from(ivText, 'base64url'));
      decipher.setAAD(Buffer.from(aad));
      decipher.setAuthTag(ct.subarray(ct.length - 16));
      return Buffer.concat([decipher.update(ct.subarray(0, ct.length - 16)), decipher.final()]);
    } catch (err) {
      throw new LatchkeyError('key_decrypt_failed', 'a sealed private key could not be decrypted: wrong master key?', {
        cause: err,
      });
    }
  }
}
