import type { AccessTokenClaims } from '@latchkey/protocol';
import type { FastifyRequest } from 'fastify';
import type { ServerEvents } from '../events.ts';
import type { KeyRing } from '../keys/key_ring.ts';
import type { TokenPolicy } from '../policy/token_policy.ts';
import type { ClientRecord, TokenStatusRecord, UserRecord } from '../storage/ports.ts';
import { type MintedToken, mintAccessToken, type TokenStatusSource } from './access_token.ts';
import { chooseAudience } from './audience.ts';

export interface UserTokenDeps {
  issuer: string;
  accessTokenTtl: number;
  keys: Pick<KeyRing, 'signAccessToken'>;
  /** Token Status List references in tokens (absent when turned off). */
  statusLists?: TokenStatusSource | undefined;
  tokenPolicy: Pick<TokenPolicy, 'allowsUser'>;
}

/**
 * A user's access token for a client (authorization code and refresh grants): `sub` the user,
 * their roles and groups as they are now (RFC 9068 §2.2.3.1), for the resources asked for at
 * /authorize (or the client's default audience) — each one the IdP's token policy lets this user
 * have through this client — with the IdP among the audiences when the scope has `openid`, so the
 * same token opens /userinfo.
 */
export async function mintUserAccessToken(
  deps: UserTokenDeps,
  client: ClientRecord,
  user: UserRecord,
  grant: { scope: string | null; resource: string[] | null },
  now: number,
): Promise<MintedToken<AccessTokenClaims> & { ttl: number }> {
  const openid = (grant.scope ?? '').split(' ').includes('openid');
  const allowed = (a: string) => a === deps.issuer || deps.tokenPolicy.allowsUser(client, user, a);
  const asked = grant.resource ?? undefined;
  const main = chooseAudience(asked, allowed, asked ? undefined : (client.metadata.default_audience ?? deps.issuer));
  const audience = [...new Set([...(Array.isArray(main) ? main : [main]), ...(openid ? [deps.issuer] : [])])];
  const ttl = client.metadata.access_token_ttl ?? deps.accessTokenTtl;
  const minted = await mintAccessToken(
    deps,
    deps.issuer,
    {
      subject: user.sub,
      clientId: client.clientId,
      audience: audience.length === 1 ? (audience[0] as string) : audience,
      ttl,
      scope: grant.scope ?? undefined,
      roles: user.roles,
      groups: user.groups,
      attributes: pick(user.attributes, client.metadata.user_attributes),
    },
    now,
  );
  return { ...minted, ttl };
}

/** The attributes a client's registration names, of those the user has (tokens stay small: nothing by default). */
const pick = (attributes: Record<string, unknown>, names: readonly string[] | undefined) =>
  names
    ? Object.fromEntries(names.filter((n) => Object.hasOwn(attributes, n)).map((n) => [n, attributes[n]]))
    : undefined;

/** The one event of a user's token (`token.issued`), written before the token is answered. */
export function userTokenIssued(
  events: ServerEvents,
  request: FastifyRequest,
  issued: {
    clientId: string;
    claims: AccessTokenClaims;
    authMethod: string;
    grantType: 'authorization_code' | 'refresh_token';
    scope: string | null;
    family: string | undefined;
    statusEntry: TokenStatusRecord | undefined;
  },
): Promise<void> {
  const { claims } = issued;
  return events.emit(
    'token.issued',
    {
      actor: issued.clientId,
      subject: claims.sub,
      client_id: issued.clientId,
      outcome: 'success',
      request_id: request.id,
      source_ip: request.ip,
      detail: {
        grant_type: issued.grantType,
        auth_method: issued.authMethod,
        jti: claims.jti,
        aud: claims.aud,
        scope: issued.scope,
        exp: claims.exp,
        ...(issued.family ? { family: issued.family } : {}),
      },
    },
    issued.statusEntry,
  );
}
