import { type Clock, epochSeconds } from '@latchkey/protocol';
import { OAuthError, invalidRequest } from '../../errors.ts';
import type { ServerEvents } from '../../events.ts';
import { param } from '../../http/form.ts';
import type { RevocationLog } from '../../revocation/revocation_log.ts';
import type { UserStore } from '../../storage/ports.ts';
import type { RefreshTokens } from '../refresh_tokens.ts';
import { isValidScope } from '../scope.ts';
import { mintUserAccessToken, type UserTokenDeps, userTokenIssued } from '../user_access_token.ts';
import type { GrantHandler } from './types.ts';

export interface RefreshTokenDeps extends UserTokenDeps {
  clock: Clock;
  refresh: Pick<RefreshTokens, 'use' | 'rotate' | 'revokeFamily'>;
  users: Pick<UserStore, 'getUser'>;
  events: ServerEvents;
  revocations: Pick<RevocationLog, 'check'>;
}

const invalidGrant = (description: string) => new OAuthError('invalid_grant', description);

const WHY: Record<string, string> = {
  unknown: 'the refresh token is not valid',
  other_client: 'the refresh token was issued to another client',
  revoked: 'the refresh token was revoked',
  expired: 'the refresh token has expired; sign in again',
  retry: 'the refresh token was already used; use the one that came back then',
  reused: 'the refresh token was already used; every token of this sign-in is revoked',
};

/**
 * RFC 6749 §6 with rotation (RFC 9700 §4.14.2): the presented token is used up and a new one comes
 * back with a new access token; `scope` may narrow, never widen (§6). The sign-in's lifetime is
 * fixed, the user must still exist and be enabled, and a subject or client revoked since the
 * sign-in ends it. Two concurrent refreshes with one token: exactly one succeeds.
 */
export function refreshTokenGrant(deps: RefreshTokenDeps): GrantHandler {
  return {
    grantType: 'refresh_token',
    multiValued: [],
    async handle({ request, form, client, authMethod }) {
      if (!client.metadata.grant_types.includes('refresh_token'))
        throw new OAuthError('unauthorized_client', 'client is not registered for refresh_token');
      const presented = param(form, 'refresh_token');
      if (!presented) throw invalidRequest('refresh_token is missing');
      const now = epochSeconds(deps.clock);
      const used = await deps.refresh.use(presented, client.clientId, now, request);
      if (!used.ok) throw invalidGrant(WHY[used.why] as string);
      const { family } = used;
      const user = await deps.users.getUser(family.sub);
      const revoked = await deps.revocations.check({
        jti: used.token.jti,
        iat: family.createdAt,
        client_id: family.clientId,
        sub: family.sub,
      });
      if (!user || user.disabled || revoked) {
        await deps.refresh.revokeFamily(family, now, user?.disabled ? 'user_disabled' : (revoked ?? 'user_gone'));
        throw invalidGrant('the sign-in has ended; sign in again');
      }
      let scope = family.scope;
      const asked = param(form, 'scope');
      if (asked !== undefined) {
        const granted = new Set((family.scope ?? '').split(' '));
        if (!isValidScope(asked) || asked.split(' ').some((s) => !granted.has(s)))
          throw new OAuthError('invalid_scope', 'scope may only narrow what the sign-in was granted (RFC 6749 §6)');
        scope = asked;
      }
      const { token, claims, ttl, statusEntry } = await mintUserAccessToken(
        deps,
        client,
        user,
        { scope, resource: family.resource },
        now,
      );
      const next = await deps.refresh.rotate(family, claims, now);
      await userTokenIssued(deps.events, request, {
        clientId: client.clientId,
        claims,
        statusEntry,
        authMethod,
        grantType: 'refresh_token',
        scope: scope,
        family: family.familyId,
      });
      return {
        access_token: token,
        token_type: 'Bearer',
        expires_in: ttl,
        ...(scope ? { scope } : {}),
        refresh_token: next,
      };
    },
  };
}
