import Type, { type Static } from 'typebox';
import { FormParam } from '../http/form.ts';
import { Open } from '../http/schemas.ts';

/** RFC 6749 §2.3 / RFC 7523 §2.2 client authentication parameters in a form body. */
const ClientAuthParams = {
  client_id: FormParam('the client (client_secret_post, private_key_jwt, mTLS)'),
  client_secret: FormParam('client_secret_post'),
  client_assertion_type: FormParam('urn:ietf:params:oauth:client-assertion-type:jwt-bearer (RFC 7523)'),
  client_assertion: FormParam('a JWT signed with a key of the client (private_key_jwt)'),
};

/**
 * The form parameters of each OAuth endpoint. Unknown parameters are ignored (RFC 6749 §3.1); a
 * known one given twice is refused, except `resource` (RFC 8707 §2).
 */
export const TokenRequest = Type.Object(
  {
    grant_type: FormParam('client_credentials, authorization_code or refresh_token'),
    code: FormParam('authorization_code: the code from the redirect'),
    redirect_uri: FormParam('authorization_code: the redirect_uri of the authorization request'),
    code_verifier: FormParam('authorization_code: the PKCE verifier (RFC 7636 §4.5)'),
    refresh_token: FormParam('refresh_token: the refresh token (RFC 6749 §6)'),
    subject_token: FormParam('token exchange (RFC 8693): the token of the subject acted for'),
    subject_token_type: FormParam('token exchange: its type (access_token, id_token or txn_token URN)'),
    actor_token: FormParam('token exchange: a token standing for the acting client'),
    actor_token_type: FormParam('token exchange: its type'),
    requested_token_type: FormParam('token exchange: access_token (default) or txn_token URN'),
    audience: Type.Optional(
      Type.Union([Type.String({ maxLength: 2048 }), Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 20 })], {
        description: 'token exchange: the audience (for a Transaction Token, the trust domain)',
      }),
    ),
    request_context: FormParam('Transaction Token: JSON object, the environment of the request (becomes rctx)'),
    request_details: FormParam('Transaction Token: JSON object, what the transaction is (becomes tctx)'),
    scope: FormParam('space-separated scopes, a subset of the registered scope'),
    resource: Type.Optional(
      Type.Union([Type.String({ maxLength: 2048 }), Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 20 })], {
        description: "RFC 8707 audience(s); default: the client's default audience",
      }),
    ),
    ...ClientAuthParams,
  },
  { additionalProperties: true },
);

export const TokenIntrospectionRequest = Type.Object(
  {
    token: FormParam('the token to look at'),
    token_type_hint: FormParam('access_token'),
    ...ClientAuthParams,
  },
  { additionalProperties: true },
);

/** RFC 6749 §5.1 success body. */
export const TokenResponseSchema = Type.Object({
  access_token: Type.String(),
  /** `N_A` for a Transaction Token, which is not an access token (RFC 8693 §2.2.1). */
  token_type: Type.Union([Type.Literal('Bearer'), Type.Literal('N_A')]),
  /** RFC 8693 §2.2.1: what a token exchange issued. */
  issued_token_type: Type.Optional(Type.String()),
  expires_in: Type.Integer(),
  scope: Type.Optional(Type.String()),
  /** OpenID Connect Core §3.1.3.3, when the scope has `openid`. */
  id_token: Type.Optional(Type.String()),
  /** RFC 6749 §6, for a client registered for refresh_token: a new one at every use (RFC 9700 §4.14.2). */
  refresh_token: Type.Optional(Type.String()),
});
export type TokenResponse = Static<typeof TokenResponseSchema>;

/** RFC 7662 §2.2: `{"active": false}` alone, or the token's claims. */
export const IntrospectionResponse = Open(
  {
    active: Type.Boolean(),
    token_type: Type.Optional(Type.String()),
    client_id: Type.Optional(Type.String()),
    sub: Type.Optional(Type.String()),
    scope: Type.Optional(Type.String()),
    exp: Type.Optional(Type.Integer()),
    iat: Type.Optional(Type.Integer()),
    jti: Type.Optional(Type.String()),
  },
  'RFC 7662 §2.2 introspection response',
);

export const FORM_ROUTE = { consumes: ['application/x-www-form-urlencoded'] } as const;
