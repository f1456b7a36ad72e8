import type { KeyRing } from '../keys/key_ring.ts';
import { verifyOwnJws } from '../keys/own_token_verifier.ts';

export interface IdTokenInput {
  issuer: string;
  sub: string;
  clientId: string;
  ttl: number;
  authTime: number;
  nonce: string | null;
  /** Claims the granted scope releases (OpenID Connect Core §5.4): profile and email. */
  claims?: Record<string, unknown>;
}

/**
 * An OpenID Connect ID token (Core §2, §3.1.3.7): signed by the current key with `typ` JWT, so it
 * can never pass for an access token (`at+jwt`, RFC 9068 §2.1 and RFC 8725 §3.11), and the other
 * way round. `aud` is the client alone, so `azp` is not needed.
 */
export function mintIdToken(keys: Pick<KeyRing, 'signDocument'>, input: IdTokenInput, now: number): string {
  const payload = {
    iss: input.issuer,
    sub: input.sub,
    aud: input.clientId,
    exp: now + input.ttl,
    iat: now,
    auth_time: input.authTime,
    ...(input.nonce !== null ? { nonce: input.nonce } : {}),
    ...input.claims,
  };
  return keys.signDocument(payload, 'JWT').jws;
}

/**
 * An `id_token_hint` (OpenID Connect RP-Initiated Logout §2): an ID token this IdP signed, with a
 * published key and that key's algorithm, `typ` JWT, our issuer. Its expiry does not matter (a
 * logout often comes after it); undefined for anything else.
 */
export function readIdTokenHint(
  keys: Pick<KeyRing, 'publishedKey'>,
  issuer: string,
  token: string,
): { sub: string; aud: string; sid: string | undefined } | undefined {
  const p = verifyOwnJws(keys, token, (h) => h.typ === 'JWT');
  if (!p || p.iss !== issuer || typeof p.sub !== 'string' || typeof p.aud !== 'string') return undefined;
  return { sub: p.sub, aud: p.aud, sid: typeof p.sid === 'string' ? p.sid : undefined };
}
