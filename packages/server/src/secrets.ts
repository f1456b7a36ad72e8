import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * SHA-256, base64url: what is stored of a random one-time value (a code, a refresh token, a
 * session cookie, a recovery code) instead of the value; 256 random bits need no slow or keyed hash.
 */
export const sha256 = (value: string): string => createHash('sha256').update(value).digest('base64url');

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

/** Two strings compared in constant time (their lengths are not secret). */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
