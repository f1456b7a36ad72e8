import { ACCESS_TOKEN_TYP, parseCompactJws, verifyJws, type AccessTokenClaims } from '@latchkey/protocol';
import type { KeyRing } from './key_ring.ts';

export type OwnTokenResult =
  | { valid: true; claims: AccessTokenClaims }
  | { valid: false; reason: 'malformed' | 'unknown_key' | 'bad_signature' | 'wrong_type' | 'wrong_issuer' | 'bad_claims' | 'expired' | 'not_yet_valid'; claims?: AccessTokenClaims };

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/**
 * Checks an access token this IdP issued: signed by a published key with that key's own
 * algorithm (RFC 8725 §3.1), `typ` at+jwt (RFC 9068 §4), exact issuer, the RFC 9068 §2.2
 * required claims. Expiry is reported with the claims so revocation can still find the owner.
 */
export function verifyOwnToken(keys: Pick<KeyRing, 'publishedKey'>, issuer: string, token: string, now: number, skew: number): OwnTokenResult {
  const jws = parseCompactJws(token);
  if (!jws) return { valid: false, reason: 'malformed' };
  const { header, payload } = jws;
  const key = typeof header.kid === 'string' ? keys.publishedKey(header.kid) : undefined;
  if (!key) return { valid: false, reason: 'unknown_key' };
  if (header.alg !== key.alg || header.crit !== undefined) return { valid: false, reason: 'bad_signature' };
  if (!verifyJws(key.alg, key.publicKey, jws.signingInput, jws.signature)) return { valid: false, reason: 'bad_signature' };
  if (header.typ !== ACCESS_TOKEN_TYP && header.typ !== 'application/at+jwt') return { valid: false, reason: 'wrong_type' };
  if (payload.iss !== issuer) return { valid: false, reason: 'wrong_issuer' };
  const audOk = isStr(payload.aud) || (Array.isArray(payload.aud) && payload.aud.length > 0 && payload.aud.every(isStr));
  if (!isNum(payload.exp) || !isNum(payload.iat) || !isStr(payload.jti) || !isStr(payload.sub) || !isStr(payload.client_id) || !audOk) {
    return { valid: false, reason: 'bad_claims' };
  }
  const claims = payload as unknown as AccessTokenClaims;
  if (claims.exp <= now - skew) return { valid: false, reason: 'expired', claims };
  if (claims.iat > now + skew || (payload.nbf !== undefined && (!isNum(payload.nbf) || payload.nbf > now + skew))) {
    return { valid: false, reason: 'not_yet_valid', claims };
  }
  return { valid: true, claims };
}
