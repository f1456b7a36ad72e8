import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from './claims.ts';

/**
 * Compact JWS on synchronous node:crypto (RFC 7515 §7.1). The IdP signs its tokens here and
 * every verifier of Latchkey tokens checks them here: jose 6 goes through WebCrypto's thread
 * pool at 2-4x the CPU, which the hot paths cannot afford. Only the asymmetric algorithms of
 * {@link SigningAlgorithm} exist here; HMAC and `none` cannot be expressed (RFC 8725 §3.1).
 */
const DIGEST: Record<SigningAlgorithm, string | null> = { ES256: 'sha256', RS256: 'sha256', EdDSA: null };

export function signJws(alg: SigningAlgorithm, key: KeyObject, signingInput: string): string {
  const sig = cryptoSign(
    DIGEST[alg],
    Buffer.from(signingInput),
    alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key,
  );
  return sig.toString('base64url');
}

export function verifyJws(alg: SigningAlgorithm, key: KeyObject, signingInput: string, signature: Buffer): boolean {
  // RFC 7518 §3.4: an ES256 signature is exactly R || S, 64 bytes.
  if (alg === 'ES256' && signature.length !== 64) return false;
  if (alg === 'EdDSA' && signature.length !== 64) return false;
  try {
    return cryptoVerify(
      DIGEST[alg],
      Buffer.from(signingInput),
      alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key,
      signature,
    );
  } catch {
    return false;
  }
}

export interface ParsedJws {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/** Decodes one base64url JSON object segment, or undefined. */
function decodeObject(segment: string): Record<string, unknown> | undefined {
  if (!B64URL.test(segment)) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Splits and decodes a compact JWS without verifying it. Returns undefined for any malformed
 * shape: wrong segment count, bad base64url, non-object JSON, or input over `maxLength`.
 */
export function parseCompactJws(token: string, maxLength = 8192): ParsedJws | undefined {
  if (typeof token !== 'string' || token.length > maxLength) return undefined;
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first <= 0 || second <= first + 1 || token.indexOf('.', second + 1) !== -1) return undefined;
  const sigText = token.slice(second + 1);
  if (sigText.length === 0 || !B64URL.test(sigText)) return undefined;
  const header = decodeObject(token.slice(0, first));
  const payload = header && decodeObject(token.slice(first + 1, second));
  if (!header || !payload) return undefined;
  return { header, payload, signingInput: token.slice(0, second), signature: Buffer.from(sigText, 'base64url') };
}
