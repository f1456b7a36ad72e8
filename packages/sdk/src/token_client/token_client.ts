import { randomBytes, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { CLIENT_ASSERTION_TYPE_JWT_BEARER, type Clock, basicAuthorization, systemClock } from '@latchkey/protocol';
import { createIdpConnection, IdpMetadataError } from '../connection/idp_connection.ts';

/** Options of {@link createTokenClient}. */
export interface TokenClientOptions {
  /** Where "now" comes from (epoch milliseconds); the system clock by default. Tests pass a fake one. */
  clock?: Clock;
  issuer: string;
  clientId: string;
  /** For client_secret_basic. */
  clientSecret?: string;
  /** For private_key_jwt (RFC 7523): the client's private key, its kid and algorithm (default ES256). */
  privateKey?: { key: KeyObject | CryptoKey; kid?: string; alg?: string };
  /** fetch to reach the IdP (for a private CA: one with an undici dispatcher that trusts it). */
  fetch?: typeof fetch;
  /** Share of a token's lifetime after which it is renewed (default 0.8). */
  renewAfter?: number;
  /**
   * The workload's identity (mTLS): token requests present its current certificate, so tokens
   * are bound to it (RFC 8705 §3) and cached per certificate; `fetchFor` sends them over it. With
   * neither `clientSecret` nor `privateKey`, the certificate authenticates the client
   * (`tls_client_auth` / `self_signed_tls_client_auth`, RFC 8705 §2).
   */
  workload?: { idpFetch: typeof fetch; fetch: typeof fetch; certificate: { thumbprint: string } };
}

/**
 * The codes a {@link TokenClientError} has besides the OAuth error the token endpoint answered
 * (`invalid_client`, `invalid_target`, ...): the issuer's metadata was missing or named another
 * issuer, or the endpoint's answer was not a token response.
 *
 * @example
 * ```ts
 * if ((TOKEN_CLIENT_ERROR_CODES as readonly string[]).includes(err.code)) console.error('check the issuer URL');
 * ```
 */
export const TOKEN_CLIENT_ERROR_CODES = ['invalid_issuer', 'invalid_response'] as const;

/**
 * An error answer of the token endpoint, with its RFC 6749 §5.2 code.
 *
 * @example
 * ```ts
 * try {
 *   await tokens.getToken({ audience: 'https://orders.internal' });
 * } catch (err) {
 *   if (err instanceof TokenClientError && err.code === 'invalid_target') console.error('not registered for that audience');
 * }
 * ```
 */
export class TokenClientError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, status: number, description: string) {
    super(`${code}: ${description}`);
    this.code = code;
    this.status = status;
    this.name = 'TokenClientError';
  }
}

export interface TokenRequest {
  /** RFC 8707 resource: the audience the token is for; default: the client's default audience. */
  audience?: string;
  scope?: string;
}

export interface TokenClient {
  /** A valid access token for the audience and scope, from cache until about 80% of its lifetime. */
  getToken(request?: TokenRequest): Promise<string>;
  /**
   * A fetch that sends `Authorization: Bearer` with a token for `request`; on a 401 it renews once
   * and retries. `baseFetch` reaches the target service (default: the global fetch).
   */
  fetchFor(request?: TokenRequest, baseFetch?: typeof fetch): typeof fetch;
  /** Forgets cached tokens. */
  clear(): void;
}

interface Cached {
  token: string;
  renewAt: number;
  expiresAt: number;
}

/**
 * Gets service tokens with client_credentials (client_secret_basic or private_key_jwt), caches
 * them per (audience, scope), renews them before they expire, and lets concurrent callers for the
 * same token share one request.
 *
 * @example
 * ```ts
 * import { createTokenClient } from '@latchkey/sdk/token-client';
 * const tokens = createTokenClient({ issuer: 'https://idp.internal', clientId: 'checkout', clientSecret: process.env.SECRET! });
 * const ordersFetch = tokens.fetchFor({ audience: 'https://orders.internal', scope: 'orders:read' });
 * const res = await ordersFetch('https://orders.internal/orders/42');
 * ```
 */
export function createTokenClient(options: TokenClientOptions): TokenClient {
  if (options.clientSecret !== undefined && options.privateKey !== undefined)
    throw new TypeError('give at most one of clientSecret and privateKey');
  if (options.clientSecret === undefined && options.privateKey === undefined && !options.workload)
    throw new TypeError('give clientSecret, privateKey, or a workload identity to authenticate with');
  const f = options.fetch ?? options.workload?.idpFetch ?? globalThis.fetch;
  const renewAfter = options.renewAfter ?? 0.8;
  const clock = options.clock ?? systemClock;
  const cache = new Map<string, Cached>();
  const inflight = new Map<string, Promise<Cached>>();

  // Discovery through the IdP connection (one place that reads and checks RFC 8414 metadata).
  const idp = createIdpConnection({ issuer: options.issuer, fetch: f });
  const endpoint = (): Promise<string> =>
    idp.metadata().then(
      (m) => m.token_endpoint,
      (err: unknown) => {
        throw err instanceof IdpMetadataError ? new TokenClientError('invalid_issuer', 0, err.message) : err;
      },
    );

  const request = async (req: TokenRequest): Promise<Cached> => {
    const url = await endpoint();
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (req.audience) form.set('resource', req.audience);
    if (req.scope) form.set('scope', req.scope);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (options.clientSecret !== undefined) {
      // RFC 6749 §2.3.1: form-urlencode, then Basic.
      headers.authorization = basicAuthorization(options.clientId, options.clientSecret);
    } else if (options.privateKey === undefined) {
      // RFC 8705 §2: the certificate on the connection authenticates; client_id is REQUIRED.
      form.set('client_id', options.clientId);
    } else {
      const pk = options.privateKey;
      const assertion = await new SignJWT({ jti: randomBytes(16).toString('base64url') })
        .setProtectedHeader({ alg: pk.alg ?? 'ES256', ...(pk.kid ? { kid: pk.kid } : {}) })
        .setIssuer(options.clientId)
        .setSubject(options.clientId)
        .setAudience(options.issuer)
        .setIssuedAt()
        .setExpirationTime('60s')
        .sign(pk.key);
      form.set('client_assertion_type', CLIENT_ASSERTION_TYPE_JWT_BEARER);
      form.set('client_assertion', assertion);
    }
    const sent = clock.now();
    const res = await f(url, { method: 'POST', headers, body: form.toString() });
    const body = (await res.json().catch(() => ({}))) as {
      access_token?: string;
      expires_in?: number;
      error?: string;
      error_description?: string;
    };
    if (!res.ok || typeof body.access_token !== 'string') {
      throw new TokenClientError(
        body.error ?? 'invalid_response',
        res.status,
        body.error_description ?? `token endpoint answered HTTP ${res.status}`,
      );
    }
    const lifetime = (typeof body.expires_in === 'number' ? body.expires_in : 300) * 1000;
    return { token: body.access_token, renewAt: sent + lifetime * renewAfter, expiresAt: sent + lifetime };
  };

  // A bound token is good only over its certificate: after a rotation, new tokens.
  const cacheKey = (req: TokenRequest): string =>
    `${req.audience ?? ''}\u0000${req.scope ?? ''}\u0000${options.workload?.certificate.thumbprint ?? ''}`;

  const getToken = async (req: TokenRequest = {}): Promise<string> => {
    const key = cacheKey(req);
    const hit = cache.get(key);
    const now = clock.now();
    if (hit && now < hit.renewAt) return hit.token;
    let p = inflight.get(key);
    if (!p) {
      p = request(req)
        .then((c) => {
          cache.set(key, c);
          return c;
        })
        .finally(() => inflight.delete(key));
      inflight.set(key, p);
    }
    // Past the renewal point but still valid: use it if the renewal fails.
    if (hit && now < hit.expiresAt)
      return p.then(
        (c) => c.token,
        () => hit.token,
      );
    return (await p).token;
  };

  return {
    getToken,
    fetchFor(req = {}, baseFetch = options.workload?.fetch ?? globalThis.fetch) {
      return (async (input: string | URL | Request, init: RequestInit = {}) => {
        const send = async () => {
          const headers = new Headers(init.headers);
          headers.set('authorization', `Bearer ${await getToken(req)}`);
          return baseFetch(input, { ...init, headers });
        };
        const res = await send();
        if (res.status !== 401) return res;
        cache.delete(cacheKey(req));
        return send();
      }) as typeof fetch;
    },
    clear: () => cache.clear(),
  };
}
