import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { Open } from '../http/schemas.ts';
import {
  CLIENT_ASSERTION_ALGORITHMS,
  GRANT_TYPES,
  TOKEN_ENDPOINT_AUTH_METHODS,
  type SigningAlgorithm,
} from '@latchkey/protocol';

const MTLS_METHODS: readonly string[] = ['tls_client_auth', 'self_signed_tls_client_auth'];

/**
 * RFC 8414 §2 metadata of this authorization server. `mtls` says whether client certificates can
 * reach it (its own HTTPS, or a trusted TLS-terminating proxy): only then are the RFC 8705
 * methods and certificate-bound tokens advertised.
 */
export function serverMetadata(
  issuer: string,
  signingAlg: SigningAlgorithm,
  mtls: boolean,
  trustDomain: string,
  statusListAggregation?: string,
): Record<string, unknown> {
  const methods = TOKEN_ENDPOINT_AUTH_METHODS.filter((m) => mtls || !MTLS_METHODS.includes(m));
  return {
    issuer,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    registration_endpoint: `${issuer}/register`,
    introspection_endpoint: `${issuer}/introspect`,
    revocation_endpoint: `${issuer}/revoke`,
    authorization_endpoint: `${issuer}/authorize`,
    // RFC 9126 §5: pushed requests are supported, and required per client (require_pushed_authorization_requests).
    pushed_authorization_request_endpoint: `${issuer}/par`,
    require_pushed_authorization_requests: false,
    userinfo_endpoint: `${issuer}/userinfo`,
    end_session_endpoint: `${issuer}/end_session`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    // RFC 9700 §2.1.1: PKCE for every client, S256 only.
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['openid', 'profile', 'email'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [signingAlg],
    claims_supported: [
      'sub',
      'iss',
      'aud',
      'exp',
      'iat',
      'auth_time',
      'nonce',
      'preferred_username',
      'name',
      'updated_at',
      'email',
      'email_verified',
    ],
    prompt_values_supported: ['none', 'login', 'consent'],
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    grant_types_supported: [...GRANT_TYPES],
    token_endpoint_auth_methods_supported: methods,
    token_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGORITHMS],
    introspection_endpoint_auth_methods_supported: methods,
    introspection_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGORITHMS],
    revocation_endpoint_auth_methods_supported: methods,
    revocation_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGORITHMS],
    // RFC 9068 access tokens are signed with this algorithm.
    access_token_signing_alg_values_supported: [signingAlg],
    // RFC 9207: every authorization response carries iss.
    authorization_response_iss_parameter_supported: true,
    // RFC 8705 §3.3: access tokens can be bound to the client certificate (on the same endpoints;
    // no mtls_endpoint_aliases are needed, §5).
    tls_client_certificate_bound_access_tokens: mtls,
    // Latchkey: the audience of its Transaction Tokens (draft-ietf-oauth-transaction-tokens), which
    // the IdP signs with the keys of jwks_uri; token exchange issues them (RFC 8693 token types).
    transaction_token_audience: trustDomain,
    token_exchange_token_types_supported: [
      'urn:ietf:params:oauth:token-type:access_token',
      'urn:ietf:params:oauth:token-type:id_token',
      'urn:ietf:params:oauth:token-type:txn_token',
    ],
    // Token Status List §9.1: where the URIs of every live status list are listed.
    ...(statusListAggregation ? { status_list_aggregation_endpoint: statusListAggregation } : {}),
  };
}

/**
 * GET /.well-known/oauth-authorization-server (RFC 8414 §3) and the OpenID Connect discovery
 * path, which OpenID clients ask first; both serve the same document.
 */
export function registerDiscovery(
  app: FastifyInstance,
  deps: {
    issuer: string;
    signingAlg: () => SigningAlgorithm;
    mtls: boolean;
    trustDomain: string;
    statusListAggregation?: string | undefined;
  },
): void {
  const handler = async (_req: unknown, reply: { header(k: string, v: string): unknown }) => {
    reply.header('cache-control', 'public, max-age=300');
    return serverMetadata(deps.issuer, deps.signingAlg(), deps.mtls, deps.trustDomain, deps.statusListAggregation);
  };
  const options = {
    config: { credential: 'none' as const },
    schema: {
      tags: ['discovery'],
      response: {
        200: Open(
          {
            issuer: Type.String(),
            token_endpoint: Type.String(),
            jwks_uri: Type.String(),
            grant_types_supported: Type.Array(Type.String()),
            token_endpoint_auth_methods_supported: Type.Array(Type.String()),
          },
          'RFC 8414 §2 authorization server metadata',
        ),
      },
    },
  };
  app.get('/.well-known/oauth-authorization-server', options, handler);
  app.get('/.well-known/openid-configuration', options, handler);
}
