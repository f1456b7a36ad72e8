import type { AccessTokenClaims, ActorClaim } from '@latchkey/protocol';
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
  /** A user's groups (RFC 9068 §2.2.3.1). */
  groups?: string[] | undefined;
  /** A user's attributes the client's registration names (Cedar attributes of `User::"<sub>"`). */
  attributes?: Record<string, unknown> | undefined;
  /** RFC 8693 §4.1: the services acting for the subject (a token exchange). */
  act?: ActorClaim | undefined;
  /** A token exchange: the `jti` its chain started from. */
  originJti?: string | undefined;
  /** RFC 8705 §3.1 confirmation: the client certificate the token is bound to. */
  cnf?: { 'x5t#S256': string } | undefined;
}

/**
 * Mints an RFC 9068 access token: only iss, sub, aud, exp, iat, jti, client_id, and scope and
 * roles when present (RFC 9068 §2.2), and `cnf` for a certificate-bound token (RFC 8705 §3.1),
 * so service tokens stay small.
 */
export function mintAccessToken(
  keys: Pick<KeyRing, 'signAccessToken'>,
  issuer: string,
  input: AccessTokenInput,
  now: number,
): { token: string; claims: AccessTokenClaims } {
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
  if (input.groups && input.groups.length > 0) claims.groups = input.groups;
  if (input.attributes && Object.keys(input.attributes).length > 0) claims.attributes = input.attributes;
  if (input.act) claims.act = input.act;
  if (input.originJti) claims.origin_jti = input.originJti;
  if (input.cnf) claims.cnf = input.cnf;
  return { token: keys.signAccessToken(claims), claims };
}
