import type { FastifyRequest } from 'fastify';
import { bearerToken, invalidToken } from '../http/bearer.ts';
import type { KeyRing } from '../keys/key_ring.ts';
import { verifyOwnToken } from '../keys/own_token_verifier.ts';
import type { RevocationLog } from '../revocation/revocation_log.ts';
import type { ClientStore } from '../storage/ports.ts';
import type { ClientAuthenticator } from './client_auth/authenticate_client.ts';

export interface ServiceCallerDeps {
  issuer: string;
  keys: Pick<KeyRing, 'publishedKey'>;
  clients: Pick<ClientStore, 'getClient'>;
  revocations: Pick<RevocationLog, 'check'>;
  authenticate: ClientAuthenticator;
}

/**
 * The registered client calling a service endpoint of the IdP (feeds, audit ingestion): Basic
 * client credentials, or one of its own valid, unrevoked access tokens as a Bearer.
 */
export function serviceCaller(deps: ServiceCallerDeps): (request: FastifyRequest) => Promise<string> {
  return async (request) => {
    const bearer = bearerToken(request);
    if (!bearer) return (await deps.authenticate(request, new Map())).client.clientId;
    const r = verifyOwnToken(deps.keys, deps.issuer, bearer, Math.floor(Date.now() / 1000), 0);
    if (!r.valid) throw invalidToken('the access token is not valid');
    const client = await deps.clients.getClient(r.claims.client_id);
    if (!client || client.disabled || (await deps.revocations.check(r.claims))) throw invalidToken('the access token is not valid');
    return client.clientId;
  };
}
