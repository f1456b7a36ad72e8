import type { AccessTokenClaims } from '@latchkey/protocol';

/** The prefix of every header the sidecar sets for the upstream; any that arrive from outside are removed. */
export const IDENTITY_PREFIX = 'x-latchkey-';

/**
 * Every header the sidecar sets: the token's subject, client, scope, roles and delegation chain,
 * the mTLS peer, and the Transaction Token's `txn` (a minted Transaction Token itself goes in
 * `Txn-Token`, replacing any that came from outside).
 */
export const IDENTITY_HEADERS = [
  'x-latchkey-sub',
  'x-latchkey-client-id',
  'x-latchkey-scope',
  'x-latchkey-roles',
  'x-latchkey-act',
  'x-latchkey-peer',
  'x-latchkey-txn',
] as const;

/** The identity headers of an allowed request (lowercase names). */
export function identityHeaders(
  claims: AccessTokenClaims | undefined,
  peer: string | undefined,
): Record<string, string> {
  const h: Record<string, string> = {};
  if (claims) {
    h['x-latchkey-sub'] = claims.sub;
    h['x-latchkey-client-id'] = claims.client_id;
    if (claims.scope) h['x-latchkey-scope'] = claims.scope;
    if (claims.roles?.length) h['x-latchkey-roles'] = claims.roles.join(',');
    const act = (claims as { act?: unknown }).act;
    if (act !== undefined) h['x-latchkey-act'] = JSON.stringify(act);
  }
  if (peer) h['x-latchkey-peer'] = peer;
  return h;
}

/** Whether a header name is one the sidecar owns (to be stripped from what arrived). */
export const isIdentityHeader = (name: string): boolean => name.toLowerCase().startsWith(IDENTITY_PREFIX);
