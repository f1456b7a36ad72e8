import type { AccessTokenClaims, ActorClaim } from '@latchkey/protocol';
import type { KeyRing } from '../keys/key_ring.ts';
import { RandomPool } from '../random_pool.ts';
import type { StatusLists } from '../status/status_lists.ts';
import type { TokenStatusRecord } from '../storage/ports.ts';

/** What minting needs of the status lists: a reference for the new token, and the entry stored with its event. */
export type TokenStatusSource = Pick<StatusLists, 'reference' | 'entryOf'>;

export interface MintDeps {
  keys: Pick<KeyRing, 'signAccessToken'>;
  /** Token Status List references in tokens; absent when the setting turns them off. */
  statusLists?: TokenStatusSource | undefined;
}

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

/** A minted token, its claims, and its status-list entry to store with its `token.issued` event. */
export interface MintedToken<C> {
  token: string;
  claims: C;
  statusEntry: TokenStatusRecord | undefined;
}

/**
 * Mints an RFC 9068 access token: only iss, sub, aud, exp, iat, jti, client_id, and scope and
 * roles when present (RFC 9068 §2.2), `cnf` for a certificate-bound token (RFC 8705 §3.1), and
 * `status` (Token Status List §6.2) when enabled, so service tokens stay small. The `jti` is 16
 * characters: with a status reference it names the token's list entry (status_jti.ts, unique by
 * allocation); without, 96 random bits.
 */
export async function mintAccessToken(
  deps: MintDeps,
  issuer: string,
  input: AccessTokenInput,
  now: number,
): Promise<MintedToken<AccessTokenClaims>> {
  const claims: AccessTokenClaims = {
    iss: issuer,
    sub: input.subject,
    aud: input.audience,
    exp: now + input.ttl,
    iat: now,
    jti: '',
    client_id: input.clientId,
  };
  // A token with a status-list entry gets the jti that names it; others 96 random bits.
  const status = deps.statusLists ? await deps.statusLists.reference() : undefined;
  claims.jti = status?.jti ?? ids.id(12);
  if (input.scope) claims.scope = input.scope;
  if (input.roles && input.roles.length > 0) claims.roles = input.roles;
  if (input.groups && input.groups.length > 0) claims.groups = input.groups;
  if (input.attributes && Object.keys(input.attributes).length > 0) claims.attributes = input.attributes;
  if (input.act) claims.act = input.act;
  if (input.originJti) claims.origin_jti = input.originJti;
  if (input.cnf) claims.cnf = input.cnf;
  if (status) claims.status = { status_list: status.claim };
  const { jws, kid } = deps.keys.signAccessToken(claims);
  return { token: jws, claims, statusEntry: deps.statusLists?.entryOf(claims, claims.client_id, kid) };
}
