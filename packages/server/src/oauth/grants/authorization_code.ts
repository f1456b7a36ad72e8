import { type Clock, epochSeconds } from '@latchkey/protocol';
import { OAuthError, invalidRequest } from '../../errors.ts';
import type { ServerEvents } from '../../events.ts';
import { param } from '../../http/form.ts';
import type { KeyRing } from '../../keys/key_ring.ts';
import type { RevocationLog } from '../../revocation/revocation_log.ts';
import type { AuthorizationCodeStore, UserStore } from '../../storage/ports.ts';
import { sha256 } from '../../secrets.ts';
import { pkceMatches } from '../authorize/pkce.ts';
import { mintIdToken } from '../id_token.ts';
import { userClaims } from '../user_claims.ts';
import type { RefreshTokens } from '../refresh_tokens.ts';
import { mintUserAccessToken, type UserTokenDeps, userTokenIssued } from '../user_access_token.ts';
import type { Consents } from '../../users/consents.ts';
import type { GrantHandler } from './types.ts';

export interface AuthorizationCodeDeps extends UserTokenDeps {
  clock: Clock;
  keys: Pick<KeyRing, 'signAccessToken' | 'signDocument'>;
  refresh: Pick<RefreshTokens, 'start' | 'revokeFamilyById'>;
  codes: Pick<AuthorizationCodeStore, 'useAuthorizationCode' | 'setAuthorizationCodeJti'>;
  users: Pick<UserStore, 'getUser'>;
  /** A third-party client's code is good only while the user's consent to it stands. */
  consents: Pick<Consents, 'needed'>;
  events: ServerEvents;
  revocations: Pick<RevocationLog, 'revokeToken'>;
}

const invalidGrant = (description: string) => new OAuthError('invalid_grant', description);

/**
 * RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6) and OpenID Connect Core §3.1.3: a code is good once,
 * for the client it was issued to, with the same redirect URI and the verifier of its challenge.
 * A code used twice revokes the token the first use gave (RFC 6749 §4.1.2; RFC 9700 §4.5). The
 * access token is the user's (`sub`), carrying their roles and groups (RFC 9068 §2.2.3.1); with
 * `openid` in the scope an ID token comes with it, and the IdP is among the audiences so the
 * token also opens /userinfo.
 */
export function authorizationCodeGrant(deps: AuthorizationCodeDeps): GrantHandler {
  return {
    grantType: 'authorization_code',
    multiValued: [],
    async handle({ request, form, client, authMethod }) {
      if (!client.metadata.grant_types.includes('authorization_code'))
        throw new OAuthError('unauthorized_client', 'client is not registered for authorization_code');
      const code = param(form, 'code');
      const verifier = param(form, 'code_verifier');
      if (!code) throw invalidRequest('code is missing');
      if (!verifier) throw invalidRequest('code_verifier is missing (PKCE, RFC 7636 §4.5)');
      if (form.has('resource')) throw new OAuthError('invalid_target', 'ask for resources at /authorize');
      const now = epochSeconds(deps.clock);
      const used = await deps.codes.useAuthorizationCode(sha256(code.slice(0, 512)), now);
      if (!used) throw invalidGrant('the code is not valid');
      const c = used.code;
      if (!used.first) {
        // RFC 6749 §4.1.2: what the first use gave is revoked — its access token and its refresh token family.
        if (c.clientId === client.clientId) {
          if (used.jti)
            await deps.revocations.revokeToken({
              jti: used.jti,
              exp: now + deps.accessTokenTtl,
              client_id: c.clientId,
              sub: c.sub,
            });
          if (used.familyId) await deps.refresh.revokeFamilyById(used.familyId, now, 'code_replay');
        }
        throw invalidGrant('the code was already used; what it gave is revoked');
      }
      if (c.clientId !== client.clientId) throw invalidGrant('the code was issued to another client');
      if (c.expiresAt < now) throw invalidGrant('the code has expired');
      const redirectUri = param(form, 'redirect_uri');
      if (redirectUri !== c.redirectUri) throw invalidGrant('redirect_uri is not the one of the authorization request');
      if (!pkceMatches(verifier, c.codeChallenge))
        throw invalidGrant('code_verifier does not match the code_challenge');
      const user = await deps.users.getUser(c.sub);
      if (!user || user.disabled) throw invalidGrant('the user can no longer sign in');
      // Consent withdrawn between the code and its redemption: the code goes with it.
      if (await deps.consents.needed(client, c.sub, { scope: c.scope, resource: c.resource ?? [] }))
        throw invalidGrant('the user has not agreed to what this code is for');

      const openid = (c.scope ?? '').split(' ').includes('openid');
      const { token, claims, ttl, statusEntry } = await mintUserAccessToken(deps, client, user, c, now);
      // RFC 6749 §6: a refresh token for a client registered for the refresh_token grant.
      const refresh = client.metadata.grant_types.includes('refresh_token')
        ? await deps.refresh.start(
            {
              clientId: client.clientId,
              sub: user.sub,
              scope: c.scope,
              resource: c.resource,
              authTime: c.authTime,
              sid: c.sid,
            },
            claims,
            now,
          )
        : undefined;
      await deps.codes.setAuthorizationCodeJti(c.codeHash, claims.jti, refresh?.familyId ?? null);
      await userTokenIssued(deps.events, request, {
        clientId: client.clientId,
        claims,
        statusEntry,
        authMethod,
        grantType: 'authorization_code',
        scope: c.scope,
        family: refresh?.familyId,
      });
      const idToken = openid
        ? mintIdToken(
            deps.keys,
            {
              issuer: deps.issuer,
              sub: user.sub,
              clientId: client.clientId,
              ttl,
              authTime: c.authTime,
              nonce: c.nonce,
              claims: { ...userClaims(user, c.scope), ...(c.sid ? { sid: c.sid } : {}) },
            },
            now,
          )
        : undefined;
      return {
        access_token: token,
        token_type: 'Bearer',
        expires_in: ttl,
        ...(c.scope ? { scope: c.scope } : {}),
        ...(idToken ? { id_token: idToken } : {}),
        ...(refresh ? { refresh_token: refresh.value } : {}),
      };
    },
  };
}
