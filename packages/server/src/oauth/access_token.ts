import type { AccessTokenClaims } from '@latchkey/protocol';
import type { KeyRing } from '../keys/key_ring.ts';
import { RandomPool } from '../random_pool.ts';

const ids = new RandomPool();

export interface AccessTokenInput {
  subject: string;
  clientId: string;
  audience: string | string[];
  ttl: number;
  scope?: string | undefined;
  roles?: string[] | undefined;
}

/**
 * Mints an RFC 9068 access token: only iss, sub, aud, exp, iat, jti, client_id, and scope and
 * roles when present (RFC 9068 §2.2), so service tokens stay small.
 */
export function mintAccessToken(keys: Pick<KeyRing, 'signAccessToken'>, issuer: string, input: AccessTokenInput, now = Math.floor(Date.now() / 1000)): { token: string; claims: AccessTokenClaims } {
  const claims: AccessTokenClaims = {
    iss: issuer,
    sub: input.subject,
    aud: input.audience,
    exp: now + input.ttl,
    iat: now,
    jti: ids.id(16),
    client_id: input.clientId,
  };
  if (input.scope) claims.scope = input.scope;
  if (input.roles && input.roles.length > 0) claims.roles = input.roles;
  return { token: keys.signAccessToken(claims), claims };
}
