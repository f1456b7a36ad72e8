import type { OAuthErrorCode } from '@latchkey/protocol';
import { grantScope, PRIVILEGED_SCOPES } from '../scope.ts';
import type { ClientRecord } from '../../storage/ports.ts';
import { isS256Challenge } from './pkce.ts';

/** The scopes of OpenID Connect Core §5.4 that any code-flow client may ask for, about the user. */
export const USER_SCOPES = ['openid', 'profile', 'email'] as const;

/** An authorization request that passed every check: what the login transaction carries. */
export interface AuthorizationRequest {
  clientId: string;
  redirectUri: string;
  state: string | null;
  nonce: string | null;
  scope: string | null;
  codeChallenge: string;
  resource: string[];
  /** OpenID Connect Core §3.1.2.1: `none` (answer without a page, or login_required) or `login` (ask again). */
  prompt: 'none' | 'login' | null;
  /** `prompt=consent`: a third-party client's user is asked again, even after agreeing before. */
  consentPrompt?: boolean;
  /** Seconds since the user last authenticated beyond which they must do it again. */
  maxAge: number | null;
}

/**
 * A refusal. `redirect` false: the client or the redirect URI could not be trusted, so the error is
 * shown to the user and the browser is not sent anywhere (RFC 6749 §4.1.2.1); otherwise the error
 * goes back to the redirect URI.
 */
export class AuthorizeError extends Error {
  readonly error: OAuthErrorCode;
  readonly redirect: { uri: string; state: string | null } | undefined;
  constructor(error: OAuthErrorCode, description: string, redirect?: { uri: string; state: string | null }) {
    super(description);
    this.error = error;
    this.redirect = redirect;
  }
}

/** Parameters as they arrived: each name with every value it was given (query or form). */
export type RawParams = Map<string, string[]>;

const MAX = 2048;

/**
 * Checks an authorization request (RFC 6749 §4.1.1, RFC 7636, RFC 9700 §2.1, OpenID Connect Core
 * §3.1.2.1) against the client's registration. Order matters: until the client and the redirect
 * URI are known good, nothing is sent to the redirect URI.
 */
export function checkAuthorizationRequest(
  params: RawParams,
  client: ClientRecord | undefined,
  clientScope: string | undefined,
): AuthorizationRequest {
  const one = (name: string): string | undefined => {
    const v = params.get(name);
    if (v === undefined) return undefined;
    // RFC 6749 §3.1: parameters MUST NOT be included more than once.
    if (v.length > 1) throw new AuthorizeError('invalid_request', `${name} is repeated`);
    if ((v[0] as string).length > MAX) throw new AuthorizeError('invalid_request', `${name} is too long`);
    return v[0];
  };
  const clientId = one('client_id');
  if (!clientId) throw new AuthorizeError('invalid_request', 'client_id is missing');
  if (!client || client.disabled || !client.metadata.grant_types.includes('authorization_code'))
    throw new AuthorizeError('invalid_client', 'no client with this client_id may use the authorization code flow');
  const registered = client.metadata.redirect_uris ?? [];
  const asked = one('redirect_uri');
  // RFC 9700 §2.1: exact string comparison; omitted only when exactly one is registered (RFC 6749 §3.1.2.3).
  const redirectUri = asked ?? (registered.length === 1 ? registered[0] : undefined);
  if (!redirectUri) throw new AuthorizeError('invalid_request', 'redirect_uri is missing');
  if (!registered.includes(redirectUri))
    throw new AuthorizeError('invalid_request', 'redirect_uri is not one the client registered');

  let state: string | null = null;
  try {
    state = one('state') ?? null;
  } catch (err) {
    throw new AuthorizeError((err as AuthorizeError).error, (err as Error).message, { uri: redirectUri, state: null });
  }
  const back = (error: OAuthErrorCode, description: string) =>
    new AuthorizeError(error, description, { uri: redirectUri, state });
  const get = (name: string): string | undefined => {
    try {
      return one(name);
    } catch (err) {
      throw back('invalid_request', (err as Error).message);
    }
  };
  const responseType = get('response_type');
  if (responseType === undefined) throw back('invalid_request', 'response_type is missing');
  if (responseType !== 'code') throw back('unsupported_response_type', 'only response_type=code is supported');
  if (params.has('request')) throw back('request_not_supported', 'request objects are not supported');
  if (params.has('request_uri')) throw back('request_uri_not_supported', 'request_uri is not supported');
  const responseMode = get('response_mode');
  if (responseMode !== undefined && responseMode !== 'query')
    throw back('invalid_request', 'only response_mode=query is supported');
  // RFC 9700 §2.1.1 and OAuth 2.1: PKCE with S256, for every client.
  const codeChallenge = get('code_challenge');
  const method = get('code_challenge_method');
  if (!codeChallenge) throw back('invalid_request', 'code_challenge is required (PKCE, RFC 7636)');
  if (method !== 'S256') throw back('invalid_request', 'code_challenge_method must be S256');
  if (!isS256Challenge(codeChallenge)) throw back('invalid_request', 'code_challenge is not an S256 challenge');

  const scopeParam = get('scope');
  let scope: string | null = null;
  if (scopeParam !== undefined) {
    const words = scopeParam.split(' ');
    const user = words.filter((w) => (USER_SCOPES as readonly string[]).includes(w));
    const api = words.filter((w) => !(USER_SCOPES as readonly string[]).includes(w));
    if (api.some((w) => PRIVILEGED_SCOPES.has(w)))
      throw back('invalid_scope', 'a privileged scope is for services, not for a user’s token');
    let granted: string | undefined;
    try {
      granted = api.length > 0 ? grantScope(api.join(' '), clientScope) : undefined;
    } catch (err) {
      throw back('invalid_scope', (err as Error).message);
    }
    scope = [...new Set([...user, ...(granted ? granted.split(' ') : [])])].join(' ') || null;
  }
  const resource = params.get('resource') ?? [];
  if (resource.length > 20) throw back('invalid_target', 'too many resources');
  const prompts = (get('prompt') ?? '').split(' ').filter(Boolean);
  if (prompts.includes('none') && prompts.length > 1) throw back('invalid_request', 'prompt=none stands alone');
  const maxAgeParam = get('max_age');
  if (maxAgeParam !== undefined && !/^\d{1,9}$/.test(maxAgeParam))
    throw back('invalid_request', 'max_age must be a number of seconds');
  return {
    clientId,
    redirectUri,
    state,
    nonce: get('nonce') ?? null,
    scope,
    codeChallenge,
    resource,
    prompt: prompts.includes('none') ? 'none' : prompts.includes('login') ? 'login' : null,
    ...(prompts.includes('consent') ? { consentPrompt: true } : {}),
    maxAge: maxAgeParam === undefined ? null : Number(maxAgeParam),
  };
}

/** The redirect URI with the response parameters (RFC 6749 §4.1.2, RFC 9207 `iss`). */
export function responseUri(redirectUri: string, params: Record<string, string | null | undefined>): string {
  const u = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) u.searchParams.append(k, v);
  return u.toString();
}
