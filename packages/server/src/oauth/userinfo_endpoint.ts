import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { OAuthError } from '../errors.ts';
import { invalidToken, requireBearer } from '../http/bearer.ts';
import { oauthErrors, Open } from '../http/schemas.ts';
import type { KeyRing } from '../keys/key_ring.ts';
import { verifyOwnToken } from '../keys/own_token_verifier.ts';
import type { RevocationLog } from '../revocation/revocation_log.ts';
import type { UserStore } from '../storage/ports.ts';
import { userClaims } from './user_claims.ts';

export interface UserinfoDeps {
  issuer: string;
  clock: Clock;
  clockSkew: number;
  keys: Pick<KeyRing, 'publishedKey'>;
  revocations: Pick<RevocationLog, 'check'>;
  users: Pick<UserStore, 'getUser'>;
}

/**
 * OpenID Connect Core §5.3 UserInfo, GET and POST: a user's access token issued for the IdP (its
 * `aud` names the issuer) with the `openid` scope, not revoked, of a user who still exists and is
 * enabled. Errors as RFC 6750 §3.1 says: 401 `invalid_token`, 403 `insufficient_scope`.
 */
export function registerUserinfoEndpoint(app: FastifyInstance, deps: UserinfoDeps): void {
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const token = requireBearer(request);
    const r = verifyOwnToken(deps.keys, deps.issuer, token, epochSeconds(deps.clock), deps.clockSkew, deps.issuer);
    if (!r.valid) throw invalidToken('the access token is not valid here');
    const claims = r.claims;
    if (claims.sub === claims.client_id) throw invalidToken('the access token is not a user’s');
    if (await deps.revocations.check(claims)) throw invalidToken('the access token was revoked');
    if (!(claims.scope ?? '').split(' ').includes('openid'))
      throw new OAuthError('insufficient_scope', 'the openid scope is required', 403, {
        'www-authenticate': 'Bearer realm="latchkey", error="insufficient_scope", scope="openid"',
      });
    const user = await deps.users.getUser(claims.sub);
    if (!user || user.disabled) throw invalidToken('the user can no longer sign in');
    return reply.header('cache-control', 'no-store').send({ sub: user.sub, ...userClaims(user, claims.scope) });
  };
  const options = {
    config: { credential: 'user' as const },
    schema: {
      tags: ['OpenID Connect'],
      summary: 'OpenID Connect Core §5.3 UserInfo',
      response: {
        200: Open({ sub: Type.String() }, 'the claims the scope releases (§5.4)'),
        ...oauthErrors(401, 403),
      },
    },
  };
  app.get('/userinfo', options, handler);
  app.post(
    '/userinfo',
    { ...options, schema: { ...options.schema, consumes: ['application/x-www-form-urlencoded'] } },
    handler,
  );
}
