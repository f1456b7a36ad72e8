import type { FastifyInstance } from 'fastify';
import { CLIENT_ASSERTION_ALGORITHMS, GRANT_TYPES, TOKEN_ENDPOINT_AUTH_METHODS, type SigningAlgorithm } from '@latchkey/protocol';

/** RFC 8414 §2 metadata of this authorization server. */
export function serverMetadata(issuer: string, signingAlg: SigningAlgorithm): Record<string, unknown> {
  return {
    issuer,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    registration_endpoint: `${issuer}/register`,
    introspection_endpoint: `${issuer}/introspect`,
    revocation_endpoint: `${issuer}/revoke`,
    // REQUIRED by RFC 8414 §2; Latchkey has no authorization endpoint yet, so no response type.
    response_types_supported: [],
    grant_types_supported: [...GRANT_TYPES],
    token_endpoint_auth_methods_supported: [...TOKEN_ENDPOINT_AUTH_METHODS],
    token_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGORITHMS],
    introspection_endpoint_auth_methods_supported: [...TOKEN_ENDPOINT_AUTH_METHODS],
    introspection_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGORITHMS],
    revocation_endpoint_auth_methods_supported: [...TOKEN_ENDPOINT_AUTH_METHODS],
    revocation_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGORITHMS],
    // RFC 9068 access tokens are signed with this algorithm.
    access_token_signing_alg_values_supported: [signingAlg],
    authorization_response_iss_parameter_supported: false,
  };
}

/**
 * GET /.well-known/oauth-authorization-server (RFC 8414 §3) and the OpenID Connect discovery
 * path, which OpenID clients ask first; both serve the same document.
 */
export function registerDiscovery(app: FastifyInstance, deps: { issuer: string; signingAlg: () => SigningAlgorithm }): void {
  const handler = async (_req: unknown, reply: { header(k: string, v: string): unknown }) => {
    reply.header('cache-control', 'public, max-age=300');
    return serverMetadata(deps.issuer, deps.signingAlg());
  };
  app.get('/.well-known/oauth-authorization-server', handler);
  app.get('/.well-known/openid-configuration', handler);
}
