import { ACCESS_TOKEN_TYP, type AccessTokenClaims } from './claims.ts';
import { isActorClaim } from './delegation.ts';

/** Why an access token's header or claims are refused (the names the SDK's VerifyError codes use). */
export type AccessTokenProblem =
  | 'wrong_type'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'claims_invalid'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'binding_mismatch';

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/**
 * RFC 9068 §4: an access token's `typ` is `at+jwt` or `application/at+jwt`; media type names are
 * case-insensitive (RFC 7515 §4.1.9), so `AT+JWT` is the same type.
 */
export function accessTokenTypeOk(header: { typ?: unknown }): boolean {
  const typ = typeof header.typ === 'string' ? header.typ.toLowerCase() : '';
  return typ === ACCESS_TOKEN_TYP || typ === `application/${ACCESS_TOKEN_TYP}`;
}

/**
 * The one check of an access token's claims, after its signature: used by the SDK verifier and
 * by every place in the IdP that accepts its own tokens. `iss` compared exactly; `aud` must contain
 * `audience` when one is given (RFC 9068 §4 — introspection, which answers for any audience, gives
 * none); the RFC 9068 §2.2 required claims present and well typed; `exp`, `nbf` and `iat` within
 * `skew` seconds of `now`. Returns the claims, or the first problem (with the claims when they are
 * well formed, so that an expired token's owner can still be named).
 */
export function checkAccessTokenClaims(
  payload: Record<string, unknown>,
  o: { issuer: string; audience?: string; now: number; skew: number },
): { ok: true; claims: AccessTokenClaims } | { ok: false; problem: AccessTokenProblem; claims?: AccessTokenClaims } {
  if (payload.iss !== o.issuer) return { ok: false, problem: 'wrong_issuer' };
  const aud = payload.aud;
  const audOk = isStr(aud) || (Array.isArray(aud) && aud.length > 0 && aud.every(isStr));
  if (
    !audOk ||
    !isNum(payload.exp) ||
    !isNum(payload.iat) ||
    (payload.nbf !== undefined && !isNum(payload.nbf)) ||
    !isStr(payload.jti) ||
    !isStr(payload.sub) ||
    !isStr(payload.client_id) ||
    (payload.act !== undefined && !isActorClaim(payload.act)) ||
    (payload.origin_jti !== undefined && !isStr(payload.origin_jti))
  ) {
    return { ok: false, problem: 'claims_invalid' };
  }
  const claims = payload as unknown as AccessTokenClaims;
  if (o.audience !== undefined && !(aud === o.audience || (Array.isArray(aud) && aud.includes(o.audience))))
    return { ok: false, problem: 'wrong_audience', claims };
  const problem = checkAccessTokenTime(claims, o.now, o.skew);
  return problem ? { ok: false, problem, claims } : { ok: true, claims };
}

/** `exp`, `nbf`, `iat` against `now` with `skew` (a cached token is re-checked with this alone). */
export function checkAccessTokenTime(
  claims: AccessTokenClaims,
  now: number,
  skew: number,
): 'token_expired' | 'token_not_yet_valid' | undefined {
  if (now > claims.exp + skew) return 'token_expired';
  const nbf = (claims as unknown as { nbf?: unknown }).nbf;
  if ((isNum(nbf) && nbf > now + skew) || claims.iat > now + skew) return 'token_not_yet_valid';
  return undefined;
}

/**
 * RFC 8705 §3: a token with `cnf.x5t#S256` is good only with the certificate of that SHA-256
 * thumbprint; `thumbprint` is the presented certificate's (undefined: none presented).
 */
export function checkCertificateBinding(
  claims: AccessTokenClaims,
  thumbprint: string | undefined,
): 'binding_mismatch' | undefined {
  const cnf = (claims as unknown as { cnf?: Record<string, unknown> }).cnf;
  if (cnf === undefined) return undefined;
  const bound = cnf['x5t#S256'];
  return typeof bound === 'string' && thumbprint === bound ? undefined : 'binding_mismatch';
}
