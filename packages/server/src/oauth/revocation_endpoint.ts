import type { FastifyInstance } from 'fastify';
import { OAuthError } from '../errors.ts';
import type { RevocationLog } from '../revocation/revocation_log.ts';
import { readPresentedToken, type PresentedTokenDeps } from './presented_token.ts';
import Type from 'typebox';
import { type FormBody, formValidatorCompiler, param } from '../http/form.ts';
import { epochSeconds } from '@latchkey/protocol';
import type { RefreshTokens } from './refresh_tokens.ts';
import { oauthErrors } from '../http/schemas.ts';
import { FORM_ROUTE, TokenIntrospectionRequest } from './oauth_schemas.ts';

export interface RevocationDeps extends PresentedTokenDeps {
  revocations: Pick<RevocationLog, 'revokeToken'>;
  refresh: Pick<RefreshTokens, 'revokePresented'>;
}

/**
 * POST /revoke (RFC 7009 §2). A JWT access token's jti is stored until its exp; a refresh token
 * ends its whole family (the sign-in) with every access token it gave. Invalid,
 * unknown and expired tokens answer 200 (§2.2); another client's token is refused (§2.1); the
 * 200 is sent only after the entry is stored — a storage failure surfaces as 503.
 */
export function registerRevocationEndpoint(app: FastifyInstance, deps: RevocationDeps): void {
  app.post(
    '/revoke',
    {
      config: { credential: 'client' },
      validatorCompiler: formValidatorCompiler,
      schema: {
        tags: ['OAuth'],
        summary: 'RFC 7009 token revocation',
        ...FORM_ROUTE,
        body: TokenIntrospectionRequest,
        response: {
          200: Type.Null({ description: 'revoked, or nothing to revoke (RFC 7009 §2.2)' }),
          ...oauthErrors(400, 401, 413, 415, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const { caller, authMethod: method, result } = await readPresentedToken(request, deps);
      const base = {
        actor: caller.clientId,
        client_id: caller.clientId,
        request_id: request.id,
        source_ip: request.ip,
      } as const;
      const claims = result.valid || result.reason === 'expired' ? result.claims : undefined;
      if (claims && claims.client_id !== caller.clientId) {
        await deps.events.emit('token.revoked', {
          ...base,
          subject: claims.sub,
          outcome: 'failure',
          reason: 'unauthorized_client',
          detail: { auth_method: method, jti: claims.jti },
        });
        throw new OAuthError('unauthorized_client', 'the token was not issued to this client');
      }
      if (result.valid) {
        const event = deps.events.stage('token.revoked', {
          ...base,
          subject: result.claims.sub,
          outcome: 'success',
          detail: { auth_method: method, jti: result.claims.jti, exp: result.claims.exp },
        });
        await deps.revocations.revokeToken(result.claims, [event]);
        deps.events.committed(event);
      } else if (result.reason === 'malformed') {
        // Not a JWT: perhaps one of our refresh tokens, whose revocation ends its whole sign-in.
        const form = request.body as FormBody;
        const r = await deps.refresh.revokePresented(
          param(form, 'token') ?? '',
          caller.clientId,
          epochSeconds(deps.clock),
        );
        if (r.outcome === 'other_client') {
          await deps.events.emit('token.revoked', {
            ...base,
            subject: r.family?.sub,
            outcome: 'failure',
            reason: 'unauthorized_client',
            detail: { auth_method: method },
          });
          throw new OAuthError('unauthorized_client', 'the token was not issued to this client');
        }
        await deps.events.emit('token.revoked', {
          ...base,
          ...(r.family ? { subject: r.family.sub } : {}),
          outcome: 'success',
          ...(r.outcome === 'unknown' ? { reason: 'nothing_to_revoke:malformed' } : {}),
          detail: { auth_method: method, ...(r.family ? { refresh_family: r.family.familyId } : {}) },
        });
      } else {
        await deps.events.emit('token.revoked', {
          ...base,
          outcome: 'success',
          reason: `nothing_to_revoke:${result.reason}`,
          detail: { auth_method: method },
        });
      }
      return reply.header('cache-control', 'no-store').send();
    },
  );
}
