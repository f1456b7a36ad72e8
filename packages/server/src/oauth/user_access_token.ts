import type { AccessTokenClaims } from '@latchkey/protocol';
import type { KeyRing } from '../keys/key_ring.ts';
import type { TokenPolicy } from '../policy/token_policy.ts';
import type { ClientRecord, UserRecord } from '../storage/ports.ts';
import { mintAccessToken } from './access_token.ts';
import { chooseAudience } from './audience.ts';

export interface UserTokenDeps {
  issuer: string;
  accessTokenTtl: number;
  keys: Pick<KeyRing, 'signAccessToken'>;
  tokenPolicy: Pick<TokenPolicy, 'allows'>;
}

/**
 * A user's access token for a client (authorization code and refresh grants): `sub` the user,
 * their roles and groups as they are now (RFC 9068 §2.2.3.1), for the resources asked for at
 * /authorize (or the client's default audience), with the IdP among the audiences when the scope
 * has `openid`, so the same token opens /userinfo.
 */
export function mintUserAccessToken(
  deps: UserTokenDeps,
  client: ClientRecord,
  user: UserRecord,
  grant: { scope: string | null; resource: string[] | null },
  now: number,
): { token: string; claims: AccessTokenClaims; ttl: number } {
  const openid = (grant.scope ?? '').split(' ').includes('openid');
  const allowed = (a: string) => a === deps.issuer || deps.tokenPolicy.allows(client, a);
  const asked = grant.resource ?? undefined;
  const main = chooseAudience(asked, allowed, asked ? undefined : (client.metadata.default_audience ?? deps.issuer));
  const audience = [...new Set([...(Array.isArray(main) ? main : [main]), ...(openid ? [deps.issuer] : [])])];
  const ttl = client.metadata.access_token_ttl ?? deps.accessTokenTtl;
  const { token, claims } = mintAccessToken(
    deps.keys,
    deps.issuer,
    {
      subject: user.sub,
      clientId: client.clientId,
      audience: audience.length === 1 ? (audience[0] as string) : audience,
      ttl,
      scope: grant.scope ?? undefined,
      roles: user.roles,
      groups: user.groups,
    },
    now,
  );
  return { token, claims, ttl };
}
