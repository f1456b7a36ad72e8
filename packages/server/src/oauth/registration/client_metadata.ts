import Type, { type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { CLIENT_ASSERTION_ALGORITHMS, GRANT_TYPES, TOKEN_ENDPOINT_AUTH_METHODS } from '@latchkey/protocol';
import { OAuthError } from '../../errors.ts';
import type { ClientMetadata } from '../../storage/ports.ts';
import { isAbsoluteUri } from '../audience.ts';
import { isValidScope } from '../scope.ts';

const Name = Type.String({ minLength: 1, maxLength: 200 });
const Uri = Type.String({ minLength: 1, maxLength: 2048 });

/** An optional member that may also be null (RFC 7592 updates send null for "absent"). */
const member = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));

/** Structure of the metadata Latchkey understands (RFC 7591 §2 and Latchkey's own members). */
export const ClientMetadataSchema = Type.Object(
  {
    client_name: member(Name),
    grant_types: member(Type.Array(Type.String({ maxLength: 100 }), { minItems: 1, maxItems: 10 })),
    token_endpoint_auth_method: member(Type.String({ maxLength: 100 })),
    token_endpoint_auth_signing_alg: member(Type.String({ maxLength: 20 })),
    jwks: member(
      Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown()), { minItems: 1, maxItems: 10 }) }),
    ),
    jwks_uri: member(Uri),
    scope: member(Type.String({ minLength: 1, maxLength: 2000 })),
    audiences: member(Type.Array(Uri, { maxItems: 100 })),
    default_audience: member(Uri),
    roles: member(Type.Array(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$' }), { maxItems: 100 })),
    access_token_ttl: member(Type.Integer({ minimum: 1 })),
    // Absent means every namespace (METADATA_RULES); an empty list would read as both, so it is refused.
    policy_namespaces: member(
      Type.Array(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$', maxLength: 256 }), {
        minItems: 1,
        maxItems: 50,
      }),
    ),
    tls_client_auth_san_uri: member(Uri),
    tls_client_certificate_bound_access_tokens: member(Type.Boolean()),
    redirect_uris: member(Type.Array(Uri, { minItems: 1, maxItems: 20 })),
    require_pushed_authorization_requests: member(Type.Boolean()),
    post_logout_redirect_uris: member(Type.Array(Uri, { minItems: 1, maxItems: 20 })),
    require_second_factor: member(Type.Boolean()),
    consent_required: member(Type.Boolean()),
    user_attributes: member(
      Type.Array(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' }), { minItems: 1, maxItems: 64 }),
    ),
  },
  {
    $id: 'ClientMetadata',
    description:
      "RFC 7591 §2 client metadata, with Latchkey's members; a null member counts as absent, members Latchkey does not know are ignored",
  },
);
/** RFC 8705 §2.1.2 subject members Latchkey does not use: a workload is named by its SPIFFE ID (a URI SAN) only. */
const OTHER_TLS_SUBJECTS = [
  'tls_client_auth_subject_dn',
  'tls_client_auth_san_dns',
  'tls_client_auth_san_ip',
  'tls_client_auth_san_email',
];
const checkMetadata = Compile(ClientMetadataSchema);

/** A client id chosen by the administrator (Latchkey extension), readable in logs and policies. */
export const CLIENT_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{2,63}$/;

const bad = (description: string): OAuthError => new OAuthError('invalid_client_metadata', description);
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/**
 * Validates registration metadata (RFC 7591 §2) and returns what is stored. Members Latchkey does
 * not understand are ignored (§2: "MUST ignore"); invalid ones are `invalid_client_metadata`.
 */
export function validateClientMetadata(
  body: unknown,
  limits: { maxAccessTokenTtl: number; allowHttpJwksUri: boolean },
): ClientMetadata {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('the body must be a JSON object');
  const input = body as Record<string, unknown>;
  const known = Object.fromEntries(
    Object.keys(ClientMetadataSchema.properties)
      .filter((k) => input[k] !== undefined && input[k] !== null)
      .map((k) => [k, input[k]]),
  );
  if (!checkMetadata.Check(known)) {
    const first = [...checkMetadata.Errors(known)][0];
    throw bad(`${first?.instancePath.slice(1).replace(/\//g, '.') || 'metadata'}: ${first?.message ?? 'invalid'}`);
  }
  const m = known as Partial<ClientMetadata> & { grant_types?: string[]; token_endpoint_auth_method?: string };

  const grantTypes = m.grant_types ?? ['client_credentials'];
  for (const g of grantTypes)
    if (!(GRANT_TYPES as readonly string[]).includes(g))
      throw bad(`grant_types: ${JSON.stringify(g.slice(0, 64))} is not supported`);
  const method = m.token_endpoint_auth_method ?? 'client_secret_basic';
  if (!(TOKEN_ENDPOINT_AUTH_METHODS as readonly string[]).includes(method))
    throw bad('token_endpoint_auth_method is not supported');

  const codeFlow = grantTypes.includes('authorization_code');
  if (codeFlow && !m.redirect_uris) throw bad('authorization_code needs redirect_uris');
  if (!codeFlow && m.redirect_uris) throw bad('redirect_uris apply to the authorization_code grant only');
  for (const [member, uris] of [
    ['redirect_uris', m.redirect_uris],
    ['post_logout_redirect_uris', m.post_logout_redirect_uris],
  ] as const)
    for (const uri of uris ?? []) {
      const problem = redirectUriProblem(uri);
      if (problem) throw bad(`${member}: ${JSON.stringify(uri.slice(0, 100))} ${problem}`);
    }
  if (m.post_logout_redirect_uris && !codeFlow)
    throw bad('post_logout_redirect_uris apply to the authorization_code grant only');
  // Refresh tokens come from a user's sign-in only (RFC 6749 §1.5).
  if (grantTypes.includes('refresh_token') && !codeFlow) throw bad('refresh_token needs authorization_code');
  // A public client has no credential to prove who it is: it may only be sent codes (with PKCE) and rotate refresh tokens.
  if (method === 'none' && grantTypes.some((g) => g !== 'authorization_code' && g !== 'refresh_token'))
    throw bad('a client without authentication (none) may use authorization_code and refresh_token only');
  if (m.jwks && m.jwks_uri) throw bad('jwks and jwks_uri must not both be present (RFC 7591 §2)');
  if (method === 'private_key_jwt' && !m.jwks && !m.jwks_uri) throw bad('private_key_jwt needs jwks or jwks_uri');
  // RFC 8705 §2.2.2: the self-signed certificates are registered as x5c of the client's JWKS.
  if (method === 'self_signed_tls_client_auth') {
    if (!m.jwks && !m.jwks_uri)
      throw bad('self_signed_tls_client_auth needs jwks or jwks_uri holding the certificates (x5c)');
    if (m.jwks && !m.jwks.keys.some((k) => Array.isArray(k.x5c) && typeof k.x5c[0] === 'string'))
      throw bad('jwks: self_signed_tls_client_auth needs keys with an x5c certificate');
  }
  const otherSubject = OTHER_TLS_SUBJECTS.find((k) => input[k] !== undefined && input[k] !== null);
  if (otherSubject)
    throw bad(
      `${otherSubject} is not supported: tls_client_auth clients are identified by their SPIFFE ID (tls_client_auth_san_uri)`,
    );
  if (m.tls_client_auth_san_uri !== undefined && method !== 'tls_client_auth')
    throw bad('tls_client_auth_san_uri applies to tls_client_auth only');
  if (m.token_endpoint_auth_signing_alg !== undefined) {
    if (method !== 'private_key_jwt') throw bad('token_endpoint_auth_signing_alg applies to private_key_jwt only');
    if (!(CLIENT_ASSERTION_ALGORITHMS as readonly string[]).includes(m.token_endpoint_auth_signing_alg))
      throw bad('token_endpoint_auth_signing_alg must be an asymmetric algorithm');
  }
  if (m.jwks) {
    for (const k of m.jwks.keys) {
      if (!['EC', 'RSA', 'OKP'].includes(String(k.kty))) throw bad('jwks: keys must be EC, RSA or OKP public keys');
      if (PRIVATE_JWK_MEMBERS.some((p) => p in k)) throw bad('jwks: keys must not contain private members');
    }
  }
  if (m.jwks_uri !== undefined) {
    let u: URL;
    try {
      u = new URL(m.jwks_uri);
    } catch {
      throw bad('jwks_uri is not a URL');
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && limits.allowHttpJwksUri))
      throw bad('jwks_uri must be https');
  }
  if (m.scope !== undefined && !isValidScope(m.scope)) throw bad('scope is malformed (RFC 6749 §3.3)');
  const audiences = [...new Set(m.audiences ?? [])];
  for (const a of audiences)
    if (!isAbsoluteUri(a)) throw bad('audiences: each must be an absolute URI without a fragment (RFC 8707 §2)');
  let defaultAudience = m.default_audience;
  if (defaultAudience !== undefined && !audiences.includes(defaultAudience))
    throw bad('default_audience must be one of audiences');
  if (defaultAudience === undefined && audiences.length > 0) defaultAudience = audiences[0];
  if (m.access_token_ttl !== undefined && m.access_token_ttl > limits.maxAccessTokenTtl)
    throw bad(`access_token_ttl must be at most ${limits.maxAccessTokenTtl}`);

  const out: ClientMetadata = {
    grant_types: grantTypes as ClientMetadata['grant_types'],
    token_endpoint_auth_method: method as ClientMetadata['token_endpoint_auth_method'],
    audiences,
  };
  if (m.client_name !== undefined) out.client_name = m.client_name;
  if (m.token_endpoint_auth_signing_alg !== undefined)
    out.token_endpoint_auth_signing_alg = m.token_endpoint_auth_signing_alg;
  if (m.jwks) out.jwks = m.jwks;
  if (m.jwks_uri !== undefined) out.jwks_uri = m.jwks_uri;
  if (m.scope !== undefined) out.scope = [...new Set(m.scope.split(' '))].join(' ');
  if (defaultAudience !== undefined) out.default_audience = defaultAudience;
  if (m.roles !== undefined && m.roles.length > 0) out.roles = [...new Set(m.roles)];
  if (m.access_token_ttl !== undefined) out.access_token_ttl = m.access_token_ttl;
  if (m.policy_namespaces !== undefined) out.policy_namespaces = [...new Set(m.policy_namespaces)];
  if (m.tls_client_auth_san_uri !== undefined) out.tls_client_auth_san_uri = m.tls_client_auth_san_uri;
  if (m.tls_client_certificate_bound_access_tokens === true) out.tls_client_certificate_bound_access_tokens = true;
  if (m.redirect_uris !== undefined) out.redirect_uris = [...new Set(m.redirect_uris)];
  if (m.post_logout_redirect_uris !== undefined)
    out.post_logout_redirect_uris = [...new Set(m.post_logout_redirect_uris)];
  if (m.require_second_factor === true) {
    if (!codeFlow) throw bad('require_second_factor applies to the authorization_code grant only');
    out.require_second_factor = true;
  }
  if (m.user_attributes !== undefined) {
    if (!codeFlow) throw bad('user_attributes applies to the authorization_code grant only');
    out.user_attributes = [...new Set(m.user_attributes)];
  }
  if (m.consent_required === true) {
    if (!codeFlow) throw bad('consent_required applies to the authorization_code grant only');
    out.consent_required = true;
  }
  if (m.require_pushed_authorization_requests === true) {
    if (!codeFlow) throw bad('require_pushed_authorization_requests applies to the authorization_code grant only');
    out.require_pushed_authorization_requests = true;
  }
  return out;
}

/**
 * Why a redirect URI cannot be registered, or undefined. RFC 9700 §2.1 and §4.1: absolute, no
 * fragment (RFC 6749 §3.1.2), https — or, for native apps (RFC 8252), http on a loopback address
 * (§7.3) or a private-use scheme named after a domain the app owns (§7.1, `com.example.app:/cb`).
 */
export function redirectUriProblem(uri: string): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return 'is not an absolute URI';
  }
  if (u.hash || uri.includes('#')) return 'must not have a fragment';
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:')
    return ['127.0.0.1', '[::1]', 'localhost'].includes(u.hostname)
      ? undefined
      : 'must be https (http only on a loopback address, RFC 8252 §7.3)';
  if (/^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/.test(u.protocol)) return undefined;
  return 'must be https, loopback http, or a private-use scheme in reverse domain form (RFC 8252 §7.1)';
}

/**
 * RFC 8705 §2.1.2: a tls_client_auth client is named by exactly one subject value; in Latchkey
 * that is always its own SPIFFE ID, the only name the workload CA puts in its certificates. A
 * client may state it (it must then be exactly that) or leave it to the server.
 */
export function withTlsSubject(m: ClientMetadata, ownSpiffeId: string): ClientMetadata {
  if (m.token_endpoint_auth_method !== 'tls_client_auth') return m;
  if (m.tls_client_auth_san_uri !== undefined && m.tls_client_auth_san_uri !== ownSpiffeId) {
    throw bad(`tls_client_auth_san_uri must be the client's own SPIFFE ID, ${ownSpiffeId}`);
  }
  return { ...m, tls_client_auth_san_uri: ownSpiffeId };
}

export const usesSecret = (m: ClientMetadata): boolean =>
  m.token_endpoint_auth_method === 'client_secret_basic' || m.token_endpoint_auth_method === 'client_secret_post';
