import type { FastifyInstance } from 'fastify';
import { OAuthError, invalidRequest } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import { formValidatorCompiler, param, readForm } from '../http/form.ts';
import { oauthErrors } from '../http/schemas.ts';
import { inSpan } from '../tracing.ts';
import { FORM_ROUTE, TokenRequest, TokenResponseSchema } from './oauth_schemas.ts';
import type { ClientAuthenticator } from './client_auth/authenticate_client.ts';
import type { GrantHandler } from './grants/types.ts';

export interface TokenEndpointDeps {
  grants: GrantHandler[];
  authenticate: ClientAuthenticator;
  events: ServerEvents;
}

/** RFC 6749 §5.1: token responses are never cached. */
export const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' } as const;

/** POST /token (RFC 6749 §3.2): dispatches by grant_type through a Map of grant handlers. */
export function registerTokenEndpoint(app: FastifyInstance, deps: TokenEndpointDeps): void {
  const grants = new Map(deps.grants.map((g) => [g.grantType as string, g]));
  // Only to find grant_type: the grant's own read refuses what it does not allow repeated.
  const anyMulti = [...new Set(deps.grants.flatMap((g) => g.multiValued))];
  app.post(
    '/token',
    {
      config: { credential: 'client' },
      validatorCompiler: formValidatorCompiler,
      schema: {
        tags: ['OAuth'],
        summary:
          'RFC 6749 §3.2 token endpoint: client_credentials, authorization_code, refresh_token, token exchange (RFC 8693, Transaction Tokens)',
        ...FORM_ROUTE,
        body: TokenRequest,
        response: { 200: TokenResponseSchema, ...oauthErrors(400, 401, 413, 415, 429, 503) },
      },
    },
    async (request, reply) => {
      const raw = readForm(request, anyMulti);
      const grantType = param(raw, 'grant_type');
      if (!grantType) throw invalidRequest('grant_type is missing');
      const grant = grants.get(grantType);
      if (!grant) throw new OAuthError('unsupported_grant_type', 'grant_type is not supported');
      const form = readForm(request, grant.multiValued);
      return inSpan(request, 'latchkey.token', { 'latchkey.grant_type': grantType }, async (span) => {
        const { client, method } = await deps.authenticate(request, form);
        span.setAttributes({ 'latchkey.client_id': client.clientId, 'latchkey.auth_method': method });
        try {
          const body = await grant.handle({ request, form, client, authMethod: method });
          return reply.headers(NO_STORE).send(body);
        } catch (err) {
          if (err instanceof OAuthError) {
            await deps.events.emit('token.request_failed', {
              actor: client.clientId,
              client_id: client.clientId,
              outcome: 'failure',
              reason: err.error,
              request_id: request.id,
              source_ip: request.ip,
              detail: { grant_type: grantType, auth_method: method, description: err.message },
            });
          }
          throw err;
        }
      });
    },
  );
}
