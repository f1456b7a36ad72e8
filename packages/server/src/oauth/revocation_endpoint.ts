import type { FastifyInstance } from 'fastify';
import { OAuthError, invalidRequest } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import { param, readForm } from '../http/form.ts';
import type { KeyRing } from '../keys/key_ring.ts';
import { verifyOwnToken } from '../keys/own_token_verifier.ts';
import type { RevocationStore } from '../storage/ports.ts';
import type { ClientAuthenticator } from './client_auth/authenticate_client.ts';

export interface RevocationDeps {
  issuer: string;
  keys: Pick<KeyRing, 'publishedKey'>;
  revocations: Pick<RevocationStore, 'revokeToken'>;
  authenticate: ClientAuthenticator;
  events: ServerEvents;
}

/**
 * POST /revoke (RFC 7009 §2). A JWT access token's jti is stored until its exp. Invalid,
 * unknown and expired tokens answer 200 (§2.2); another client's token is refused (§2.1); the
 * 200 is sent only after the entry is stored — a storage failure surfaces as 503.
 */
export function registerRevocationEndpoint(app: FastifyInstance, deps: RevocationDeps): void {
  app.post('/revoke', async (request, reply) => {
    const form = readForm(request);
    const { client: caller, method } = await deps.authenticate(request, form);
    const token = param(form, 'token');
    if (!token) throw invalidRequest('token is missing');
    const now = Math.floor(Date.now() / 1000);
    const result = verifyOwnToken(deps.keys, deps.issuer, token, now, 0);
    const base = { actor: caller.clientId, client_id: caller.clientId, request_id: request.id, source_ip: request.ip } as const;
    const claims = result.valid || result.reason === 'expired' ? result.claims : undefined;
    if (claims && claims.client_id !== caller.clientId) {
      deps.events.emit('token.revoked', { ...base, subject: claims.sub, outcome: 'failure', reason: 'unauthorized_client', detail: { auth_method: method, jti: claims.jti } });
      throw new OAuthError('unauthorized_client', 'the token was not issued to this client');
    }
    if (result.valid) {
      await deps.revocations.revokeToken({ issuer: deps.issuer, jti: result.claims.jti, clientId: result.claims.client_id, expiresAt: result.claims.exp, revokedAt: now });
      deps.events.emit('token.revoked', { ...base, subject: result.claims.sub, outcome: 'success', detail: { auth_method: method, jti: result.claims.jti, exp: result.claims.exp } });
    } else {
      deps.events.emit('token.revoked', { ...base, outcome: 'success', reason: `nothing_to_revoke:${result.reason}`, detail: { auth_method: method } });
    }
    return reply.header('cache-control', 'no-store').send();
  });
}
