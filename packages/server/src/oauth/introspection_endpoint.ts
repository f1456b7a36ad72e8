import type { FastifyInstance } from 'fastify';
import type { RevocationLog } from '../revocation/revocation_log.ts';
import type { ClientStore } from '../storage/ports.ts';
import { readPresentedToken, type PresentedTokenDeps } from './presented_token.ts';
import { NO_STORE } from './token_endpoint.ts';
import { formValidatorCompiler } from '../http/form.ts';
import { oauthErrors } from '../http/schemas.ts';
import { inSpan } from '../tracing.ts';
import { FORM_ROUTE, IntrospectionResponse, TokenIntrospectionRequest } from './oauth_schemas.ts';

export interface IntrospectionDeps extends PresentedTokenDeps {
  revocations: Pick<RevocationLog, 'check'>;
  clients: Pick<ClientStore, 'getClient'>;
}

/**
 * POST /introspect (RFC 7662 §2). Any authenticated client may ask. An invalid, expired or
 * revoked token, or one whose client is gone or disabled, is `{"active":false}` and nothing
 * more (§2.2).
 */
export function registerIntrospectionEndpoint(app: FastifyInstance, deps: IntrospectionDeps): void {
  app.post(
    '/introspect',
    {
      config: { credential: 'client' },
      validatorCompiler: formValidatorCompiler,
      schema: {
        tags: ['OAuth'],
        summary: 'RFC 7662 token introspection',
        ...FORM_ROUTE,
        body: TokenIntrospectionRequest,
        response: { 200: IntrospectionResponse, ...oauthErrors(400, 401, 413, 415, 429, 503) },
      },
    },
    async (request, reply) =>
      inSpan(request, 'latchkey.introspect', {}, async (span) => {
        const { caller, authMethod: method, result } = await readPresentedToken(request, deps);
        let active = result.valid;
        let reason: string = result.valid ? 'active' : result.reason;
        if (result.valid) {
          const revoked = await deps.revocations.check(result.claims);
          if (revoked) {
            active = false;
            reason = revoked;
          } else {
            const owner = await deps.clients.getClient(result.claims.client_id);
            if (!owner || owner.disabled) {
              active = false;
              reason = 'client_gone';
            }
          }
        }
        await deps.events.emit('token.introspected', {
          actor: caller.clientId,
          client_id: caller.clientId,
          outcome: 'success',
          request_id: request.id,
          source_ip: request.ip,
          ...(result.claims ? { subject: result.claims.sub } : {}),
          detail: { auth_method: method, active, reason, ...(result.claims ? { jti: result.claims.jti } : {}) },
        });
        span.setAttributes({
          'latchkey.client_id': caller.clientId,
          'latchkey.token.active': active,
          'latchkey.token.reason': reason,
        });
        reply.headers(NO_STORE);
        if (!active || !result.claims) return { active: false };
        return { active: true, token_type: 'Bearer', ...result.claims };
      }),
  );
}
