import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { FastifyRequest } from 'fastify';
import { bearerToken, invalidToken } from '../http/bearer.ts';
import type { KeyRing } from '../keys/key_ring.ts';
import { verifyOwnToken } from '../keys/own_token_verifier.ts';
import type { RevocationLog } from '../revocation/revocation_log.ts';
import type { ClientStore } from '../storage/ports.ts';
import type { ClientCertificateReader } from '../tls/client_certificate.ts';
import type { ClientAuthenticator } from './client_auth/authenticate_client.ts';
import { OAuthError } from '../errors.ts';
import { checkCertificateBinding } from '@latchkey/protocol';

export interface ServiceCallerDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  issuer: string;
  keys: Pick<KeyRing, 'publishedKey'>;
  clients: Pick<ClientStore, 'getClient'>;
  revocations: Pick<RevocationLog, 'check'>;
  authenticate: ClientAuthenticator;
  /** The request's client certificate, for access tokens bound to one (RFC 8705 §3). */
  certificate: ClientCertificateReader;
}

export interface ServiceCallerOptions {
  /** A scope a Bearer caller's token must carry (client authentication needs none). */
  requiredScope?: string;
}

/**
 * The registered client calling a service endpoint of the IdP (feeds, audit ingestion, workload
 * certificates): client authentication (Basic, or its certificate with RFC 8705), or one of its
 * own valid, unrevoked access tokens whose audience is this IdP, as a Bearer — presented over its
 * certificate when bound to one.
 */
export function serviceCaller(
  deps: ServiceCallerDeps,
): (request: FastifyRequest, options?: ServiceCallerOptions) => Promise<string> {
  return async (request, options = {}) => {
    const bearer = bearerToken(request);
    if (!bearer) return (await deps.authenticate(request, new Map())).client.clientId;
    // RFC 9068 §4 / RFC 8707: the IdP's own endpoints are a resource server like any other — a
    // token audienced to some service must not work here (that service could replay it).
    const r = verifyOwnToken(deps.keys, deps.issuer, bearer, epochSeconds(deps.clock), 0, deps.issuer);
    if (!r.valid)
      throw invalidToken(
        r.reason === 'wrong_audience'
          ? 'the access token is not audienced to this IdP'
          : 'the access token is not valid',
      );
    const client = await deps.clients.getClient(r.claims.client_id);
    if (!client || client.disabled || (await deps.revocations.check(r.claims)))
      throw invalidToken('the access token is not valid');
    if (client.lockedUntil !== null && client.lockedUntil > deps.clock.now() / 1000)
      throw invalidToken('the client is locked');
    if (checkCertificateBinding(r.claims, deps.certificate(request)?.thumbprint))
      throw invalidToken('the access token is bound to another client certificate');
    if (options.requiredScope && !(r.claims.scope ?? '').split(' ').includes(options.requiredScope)) {
      // RFC 6750 §3.1.
      throw new OAuthError('insufficient_scope', `the access token needs the ${options.requiredScope} scope`, 403, {
        'www-authenticate': `Bearer realm="latchkey", error="insufficient_scope", scope="${options.requiredScope}"`,
      });
    }
    return client.clientId;
  };
}
