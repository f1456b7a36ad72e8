import type { FastifyInstance } from 'fastify';
import { invalidRequest } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import { param, readForm } from '../http/form.ts';
import type { KeyRing } from '../keys/key_ring.ts';
import { verifyOwnToken } from '../keys/own_token_verifier.ts';
import type { ClientStore, RevocationStore } from '../storage/ports.ts';
import type { ClientAuthenticator } from './client_auth/authenticate_client.ts';
import { NO_STORE } from './token_endpoint.ts';

export interface IntrospectionDeps {
  issuer: string;
  keys: Pick<KeyRing, 'publishedKey'>;
  revocations: Pick<RevocationStore, 'isTokenRevoked'>;
  clients: Pick<ClientStore, 'getClient'>;
  authenticate: ClientAuthenticator;
  events: ServerEvents;
}

/**
 * POST /introspect (RFC 7662 §2). Any authenticated client may ask. An invalid, expired or
 * revoked token, or one whose client is gone or disabled, is `{"active":false}` and nothing
 * more (§2.2).
 */
export function registerIntrospectionEndpoint(app: FastifyInstance, deps: IntrospectionDeps): void {
  app.post('/introspect', async (request, reply) => {
    const form = readForm(request);
    const { client: caller, method } = await deps.authenticate(request, form);
    const token = param(form, 'token');
    if (!token) throw invalidRequest('token is missing');
    const now = Math.floor(Date.now() / 1000);
    const result = verifyOwnToken(deps.keys, deps.issuer, token, now, 0);
    let active = result.valid;
    let reason: string = result.valid ? 'active' : result.reason;
    if (result.valid) {
      if (await deps.revocations.isTokenRevoked(deps.issuer, result.claims.jti)) {
        active = false;
        reason = 'revoked';
      } else {
        const owner = await deps.clients.getClient(result.claims.client_id);
        if (!owner || owner.disabled) {
          active = false;
          reason = 'client_gone';
        }
      }
    }
    deps.events.emit('token.introspected', {
      actor: caller.clientId, client_id: caller.clientId, outcome: 'success', request_id: request.id, source_ip: request.ip,
      ...(result.claims ? { subject: result.claims.sub } : {}),
      detail: { auth_method: method, active, reason, ...(result.claims ? { jti: result.claims.jti } : {}) },
    });
    reply.headers(NO_STORE);
    if (!active || !result.claims) return { active: false };
    return { active: true, token_type: 'Bearer', ...result.claims };
  });
}
