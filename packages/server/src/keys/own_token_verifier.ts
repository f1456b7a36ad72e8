import {
  accessTokenTypeOk,
  checkAccessTokenClaims,
  parseCompactJws,
  verifyJws,
  type AccessTokenClaims,
} from '@latchkey/protocol';
import type { KeyRing } from './key_ring.ts';

export type OwnTokenResult =
  | { valid: true; claims: AccessTokenClaims; kid: string }
  | {
      valid: false;
      reason:
        | 'malformed'
        | 'unknown_key'
        | 'bad_signature'
        | 'wrong_type'
        | 'wrong_issuer'
        | 'wrong_audience'
        | 'bad_claims'
        | 'expired'
        | 'not_yet_valid';
      claims?: AccessTokenClaims;
    };

const REASON = {
  wrong_issuer: 'wrong_issuer',
  wrong_audience: 'wrong_audience',
  claims_invalid: 'bad_claims',
  token_expired: 'expired',
  token_not_yet_valid: 'not_yet_valid',
} as const;

/**
 * Checks an access token this IdP issued: signed by a published key with that key's own
 * algorithm (RFC 8725 §3.1), `typ` at+jwt, then the same claims check the SDK verifier makes
 * (`checkAccessTokenClaims`): exact issuer, `audience` when given (the IdP's own endpoints give
 * the issuer; introspection, which answers for any audience, gives none), required claims, times.
 * Expiry is reported with the claims so revocation can still find the owner.
 */
export function verifyOwnToken(
  keys: Pick<KeyRing, 'publishedKey'>,
  issuer: string,
  token: string,
  now: number,
  skew: number,
  audience?: string,
): OwnTokenResult {
  const jws = parseCompactJws(token);
  if (!jws) return { valid: false, reason: 'malformed' };
  const { header, payload } = jws;
  const key = typeof header.kid === 'string' ? keys.publishedKey(header.kid) : undefined;
  if (!key) return { valid: false, reason: 'unknown_key' };
  if (header.alg !== key.alg || header.crit !== undefined) return { valid: false, reason: 'bad_signature' };
  if (!verifyJws(key.alg, key.publicKey, jws.signingInput, jws.signature))
    return { valid: false, reason: 'bad_signature' };
  if (!accessTokenTypeOk(header)) return { valid: false, reason: 'wrong_type' };
  const r = checkAccessTokenClaims(payload, { issuer, ...(audience !== undefined ? { audience } : {}), now, skew });
  if (!r.ok)
    return {
      valid: false,
      reason: REASON[r.problem as keyof typeof REASON] ?? 'bad_claims',
      ...(r.claims ? { claims: r.claims } : {}),
    };
  return { valid: true, claims: r.claims, kid: key.kid };
}

/**
 * Any other JWS this IdP signed (an ID token, a Transaction Token): signed by a published key with
 * that key's own algorithm (RFC 8725 §3.1), no `crit`, and a `typ` that `typOk` accepts. Its
 * payload, or undefined; the claims are the caller's to check.
 */
export function verifyOwnJws(
  keys: Pick<KeyRing, 'publishedKey'>,
  token: string,
  typOk: (header: Record<string, unknown>) => boolean,
): Record<string, unknown> | undefined {
  const jws = parseCompactJws(token);
  if (!jws) return undefined;
  const key = typeof jws.header.kid === 'string' ? keys.publishedKey(jws.header.kid) : undefined;
  if (!key || jws.header.alg !== key.alg || jws.header.crit !== undefined || !typOk(jws.header)) return undefined;
  return verifyJws(key.alg, key.publicKey, jws.signingInput, jws.signature) ? jws.payload : undefined;
}
