import { JWT_BEARER_GRANT } from '@latchkey/protocol';
import { invalidRequest, OAuthError } from '../../errors.ts';
import { type FederatedAssertions, FederationError, grantAssertionKind } from '../../federation/federated_assertion.ts';
import { param } from '../../http/form.ts';
import { type ClientCredentialsDeps, issueServiceToken } from './client_credentials.ts';
import type { GrantHandler } from './types.ts';

export interface JwtBearerDeps extends ClientCredentialsDeps {
  assertions: Pick<FederatedAssertions, 'verify'>;
}

/**
 * RFC 7523 §2.1: a JWT from a trusted issuer (a Kubernetes service-account token, a CI job's OIDC
 * token, a JWT-SVID) as the authorization grant, for a token of the client an administrator's
 * federation rule maps it to. Without other client credentials the assertion authenticates that
 * client too (§3.1); with them, it must map to the client that authenticated. The client must be
 * registered for this grant or for client_credentials: the token is the same, a token for itself.
 */
export function jwtBearerGrant(deps: JwtBearerDeps): GrantHandler {
  return {
    grantType: JWT_BEARER_GRANT,
    multiValued: ['resource'],
    async handle(ctx) {
      const { form, client, authMethod } = ctx;
      const assertion = param(form, 'assertion');
      if (!assertion) throw invalidRequest('assertion is missing');
      const grants = client.metadata.grant_types;
      if (!grants.includes(JWT_BEARER_GRANT) && !grants.includes('client_credentials'))
        throw new OAuthError('unauthorized_client', 'client is not registered for the JWT bearer grant');
      // The assertion authenticated the client already (no other credential was sent): it is verified.
      const verified = authMethod.startsWith('federation:') && !form.has('client_assertion');
      if (!verified) {
        try {
          const identity = await deps.assertions.verify(assertion, grantAssertionKind(assertion));
          if (identity.rule.clientId !== client.clientId)
            throw new OAuthError('invalid_grant', 'the assertion maps to another client');
        } catch (err) {
          // RFC 7523 §3.1: an assertion that is not valid is invalid_grant.
          if (err instanceof FederationError) throw new OAuthError('invalid_grant', err.message);
          throw err;
        }
      }
      return issueServiceToken(deps, ctx, JWT_BEARER_GRANT);
    },
  };
}
