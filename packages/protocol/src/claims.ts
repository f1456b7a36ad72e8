import type { ActorClaim } from './delegation.ts';
import type { StatusClaim } from './status_list.ts';

/**
 * Claims of a Latchkey access token (RFC 9068 §2.2). Minimal by design: attributes for
 * authorization come from policy bundles, not from the token.
 */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  /** Space-separated scope (RFC 9068 §2.2.3), present only when granted. */
  scope?: string;
  /** Role names (RFC 9068 §2.2.3.1 `roles`), present only when the client (or the user) has roles. */
  roles?: string[];
  /** A user's groups (RFC 9068 §2.2.3.1 `groups`), present only in a user's token, when they have groups. */
  groups?: string[];
  /**
   * A user's attributes that the client's registration names (`user_attributes`): Cedar attributes
   * of the principal `User::"<sub>"` at services. Present only in a user's token, only when named.
   */
  attributes?: Record<string, unknown>;
  /**
   * RFC 8693 §4.1: the services acting for `sub`, the current one outermost (a token from a token
   * exchange). `client_id` is the current actor.
   */
  act?: ActorClaim;
  /** A token from a token exchange: the `jti` of the token its chain started from (revoking that revokes this). */
  origin_jti?: string;
  /** RFC 8705 §3.1: the token is bound to the client certificate with this SHA-256 thumbprint. */
  cnf?: { 'x5t#S256': string };
  /** Token Status List §6.2: where a verifier with no Latchkey code looks up whether the token is revoked. */
  status?: StatusClaim;
}

/** JOSE header `typ` of an access token (RFC 9068 §2.1). */
export const ACCESS_TOKEN_TYP = 'at+jwt';

/** Asymmetric algorithms Latchkey signs and accepts. HMAC and `none` are never allowed (RFC 8725 §3.1). */
export const SIGNING_ALGORITHMS = ['ES256', 'EdDSA', 'RS256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** Algorithms accepted for client assertions (RFC 7523), asymmetric only. */
/** Ed25519 is RFC 9864's fully-specified name for EdDSA over Ed25519, which current clients send. */
export const CLIENT_ASSERTION_ALGORITHMS = [
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
] as const;
export type ClientAssertionAlgorithm = (typeof CLIENT_ASSERTION_ALGORITHMS)[number];

export const CLIENT_ASSERTION_TYPE_JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** draft-ietf-oauth-spiffe-client-auth §3.1: a SPIFFE JWT-SVID as the client assertion. */
export const CLIENT_ASSERTION_TYPE_JWT_SPIFFE = 'urn:ietf:params:oauth:client-assertion-type:jwt-spiffe';
/** RFC 7523 §2.1: a JWT as an authorization grant. */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** RFC 6749 §2.3.1, RFC 7523 §2.2, RFC 8705 §2.1 (PKI: by SPIFFE ID) and §2.2 (self-signed). */
export const TOKEN_ENDPOINT_AUTH_METHODS = [
  'client_secret_basic',
  'client_secret_post',
  'private_key_jwt',
  'tls_client_auth',
  'self_signed_tls_client_auth',
  /** RFC 7591 §2: a public client (a browser or mobile app) that holds no secret; PKCE protects its codes. */
  'none',
] as const;
export type TokenEndpointAuthMethod = (typeof TOKEN_ENDPOINT_AUTH_METHODS)[number];

export const GRANT_TYPES = [
  'client_credentials',
  'authorization_code',
  'refresh_token',
  'urn:ietf:params:oauth:grant-type:token-exchange',
  'urn:ietf:params:oauth:grant-type:jwt-bearer',
] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

/**
 * An RFC 6749 §2.3.1 `Authorization: Basic` value: client id and secret form-urlencoded, joined by
 * `:`, base64-encoded.
 */
export const basicAuthorization = (clientId: string, clientSecret: string): string =>
  `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
