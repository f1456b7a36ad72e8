import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A new random credential: 256 bits, base64url (43 characters). */
export const newSecret = (): string => randomBytes(32).toString('base64url');

/**
 * Hashes a random credential with HMAC-SHA256 under a server key. A slow password hash buys
 * nothing for 256-bit random secrets; the key keeps a stolen table useless without the master key.
 */
export function hashSecret(key: Buffer, secret: string): string {
  return createHmac('sha256', key).update(secret).digest('base64url');
}

/** Constant-time check of a presented credential against a stored hash. */
export function verifySecret(key: Buffer, presented: string, storedHash: string | null): boolean {
  const a = Buffer.from(hashSecret(key, presented));
  // Hash something of the same length when there is no stored hash, so timing does not tell.
  const b = Buffer.from(storedHash ?? hashSecret(key, 'no-secret-stored'));
  return a.length === b.length && timingSafeEqual(a, b) && storedHash !== null;
}
