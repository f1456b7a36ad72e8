import { type Clock, epochSeconds } from '@latchkey/protocol';
import { aboutClient, type ServerEvents } from '../../events.ts';
import { OAuthError } from '../../errors.ts';
import { param } from '../../http/form.ts';
import type { KeyRing } from '../../keys/key_ring.ts';
import { mintAccessToken, type TokenStatusSource } from '../access_token.ts';
import { chooseAudience } from '../audience.ts';
import { grantScope, PRIVILEGED_SCOPES } from '../scope.ts';
import type { TokenPolicy } from '../../policy/token_policy.ts';
import type { ClientCertificateReader } from '../../tls/client_certificate.ts';
import { bindToCertificate } from '../certificate_binding.ts';
import type { GrantContext, GrantHandler, TokenResponse } from './types.ts';

export interface ClientCredentialsDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  issuer: string;
  accessTokenTtl: number;
  keys: Pick<KeyRing, 'signAccessToken'>;
  /** Token Status List references in tokens (absent when turned off). */
  statusLists?: TokenStatusSource | undefined;
  events: ServerEvents;
  /** Which audiences a client may have tokens for: its registration and the IdP's Cedar policies. */
  tokenPolicy: Pick<TokenPolicy, 'allows'>;
  /** The client certificate of the request, for RFC 8705 certificate-bound tokens. */
  certificate: ClientCertificateReader;
}

/** RFC 6749 §4.4: the client asks for a token on its own behalf. No refresh token (§4.4.3). */
export function clientCredentialsGrant(deps: ClientCredentialsDeps): GrantHandler {
  return {
    grantType: 'client_credentials',
    multiValued: ['resource'],
    async handle(ctx) {
      if (!ctx.client.metadata.grant_types.includes('client_credentials')) {
        throw new OAuthError('unauthorized_client', 'client is not registered for client_credentials');
      }
      return issueServiceToken(deps, ctx, 'client_credentials');
    },
  };
}

/**
 * A token for the client itself (`sub` = `client_id`): the scope asked for within its registration,
 * an audience its registration and the IdP's policies allow, bound to its certificate when it
 * registered so — what client_credentials and the JWT bearer grant (RFC 7523 §2.1) both issue.
 */
export async function issueServiceToken(
  deps: ClientCredentialsDeps,
  { request, form, client, authMethod }: GrantContext,
  grantType: 'client_credentials' | 'urn:ietf:params:oauth:grant-type:jwt-bearer',
): Promise<TokenResponse> {
  const m = client.metadata;
  const scope = grantScope(param(form, 'scope'), m.scope);
  // Every client may have a token for the IdP itself (its feeds, audit ingestion, workload
  // certificates), the endpoints it may already reach with its client authentication.
  const audience = chooseAudience(
    form.get('resource'),
    (a) => a === deps.issuer || deps.tokenPolicy.allows(client, a),
    m.default_audience,
  );
  // A privileged scope opens IdP endpoints only: a token carrying one is for the IdP alone.
  if (scope?.split(' ').some((s) => PRIVILEGED_SCOPES.has(s)) && audience !== deps.issuer) {
    throw new OAuthError(
      'invalid_scope',
      `scope ${[...PRIVILEGED_SCOPES].join(', ')} is granted only with resource=${deps.issuer}`,
    );
  }
  const { ttl, cnf } = bindToCertificate(
    client,
    deps.certificate(request),
    m.access_token_ttl ?? deps.accessTokenTtl,
    deps.clock.now(),
  );
  const { token, claims, statusEntry } = await mintAccessToken(
    deps,
    deps.issuer,
    { subject: client.clientId, clientId: client.clientId, audience, ttl, scope, roles: m.roles, cnf },
    epochSeconds(deps.clock),
  );
  await deps.events.emit(
    'token.issued',
    {
      ...aboutClient(client.clientId, client.clientId, request),
      detail: {
        grant_type: grantType,
        auth_method: authMethod,
        jti: claims.jti,
        aud: audience,
        scope: scope ?? null,
        exp: claims.exp,
        ...(cnf ? { cnf_x5t_s256: cnf['x5t#S256'] } : {}),
      },
    },
    statusEntry,
  );
  return scope
    ? { access_token: token, token_type: 'Bearer', expires_in: ttl, scope }
    : { access_token: token, token_type: 'Bearer', expires_in: ttl };
}
