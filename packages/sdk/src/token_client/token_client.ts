import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import {
  CLIENT_ASSERTION_TYPE_JWT_BEARER,
  type Clock,
  basicAuthorization,
  systemClock,
  TOKEN_EXCHANGE_GRANT,
  TOKEN_TYPES,
  TXN_TOKEN_HEADER,
} from '@latchkey/protocol';
import { createIdpConnection, IdpMetadataError } from '../connection/idp_connection.ts';
import { currentTransaction } from '../txn/transaction_context.ts';
import { inClientSpan, injectTraceContext } from '../tracing.ts';

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

/** What {@link TokenClient.exchange} asks for (RFC 8693): a token to call `audience` on behalf of the subject. */
export interface ExchangeRequest {
  /** The token this service was called with (the subject's: a user's or another service's access token). */
  subjectToken: string;
  /** Its RFC 8693 type (default: an access token). */
  subjectTokenType?: 'access_token' | 'id_token' | 'txn_token';
  /** The service to call (its audience URI). */
  audience: string;
  /** A subset of the subject token's scope (default: all of it). */
  scope?: string;
}

/** What {@link TokenClient.transactionToken} asks for (draft-ietf-oauth-transaction-tokens). */
export interface TransactionTokenRequest {
  /** The token that starts the transaction (an access or ID token), or a Transaction Token to replace. */
  subjectToken: string;
  subjectTokenType?: 'access_token' | 'id_token' | 'txn_token';
  /** The purpose, a subset of the subject token's scope. */
  scope: string;
  /** The environment of the request (becomes `rctx`): the caller's address, how they authenticated… */
  requestContext?: Record<string, unknown>;
  /** What the transaction is (becomes `tctx`, immutable down the chain): the parameters that matter. */
  requestDetails?: Record<string, unknown>;
}

export interface TokenClient {
  /** A valid access token for the audience and scope, from cache until about 80% of its lifetime. */
  getToken(request?: TokenRequest): Promise<string>;
  /**
   * A fetch that sends `Authorization: Bearer` with a token for `request`; on a 401 it renews once
   * and retries. `baseFetch` reaches the target service (default: the global fetch).
   */
  fetchFor(request?: TokenRequest, baseFetch?: typeof fetch): typeof fetch;
  /**
   * RFC 8693 token exchange: an access token for `audience` that keeps the subject's `sub` and
   * names this service (and those before it) in `act`. Cached per subject token, audience and scope
   * until about 80% of its lifetime.
   */
  exchange(request: ExchangeRequest): Promise<string>;
  /**
   * A fetch that calls `request.audience` on behalf of the subject: `Authorization: Bearer` with
   * the exchanged token (and the current `Txn-Token`, as fetchFor does).
   */
  fetchOnBehalf(request: ExchangeRequest, baseFetch?: typeof fetch): typeof fetch;
  /** A Transaction Token for the trust domain (never cached: each is one transaction's). */
  transactionToken(request: TransactionTokenRequest): Promise<string>;
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

  /** One token request with this client's authentication: the token and when to renew it (in a client span). */
  const post = (form: URLSearchParams): Promise<Cached> =>
    inClientSpan('latchkey.token_client.request', { 'latchkey.grant_type': form.get('grant_type') ?? '' }, () =>
      postNow(form),
    );
  const postNow = async (form: URLSearchParams): Promise<Cached> => {
    const url = await endpoint();
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    // Within a transaction an exchange carries its Txn-Token, so the IdP records it under that transaction.
    const txn = form.get('grant_type') === TOKEN_EXCHANGE_GRANT ? currentTransaction() : undefined;
    if (txn) headers[TXN_TOKEN_HEADER] = txn.token;
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
    // The IdP's /token span joins this trace (W3C Trace Context).
    injectTraceContext(headers);
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

  const request = (req: TokenRequest): Promise<Cached> => {
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (req.audience) form.set('resource', req.audience);
    if (req.scope) form.set('scope', req.scope);
    return post(form);
  };

  const exchangeForm = (
    subjectToken: string,
    type: ExchangeRequest['subjectTokenType'],
    audience: string,
    scope?: string,
  ) => {
    const form = new URLSearchParams({
      grant_type: TOKEN_EXCHANGE_GRANT,
      subject_token: subjectToken,
      subject_token_type: TOKEN_TYPES[type ?? 'access_token'],
      audience,
    });
    if (scope) form.set('scope', scope);
    return form;
  };
  // Exchanged tokens, per subject token (by its hash), audience and scope; bounded, oldest out first.
  const exchanged = new Map<string, Cached>();
  const exchangeInflight = new Map<string, Promise<Cached>>();

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

  /**
   * A fetch that sends `Authorization: Bearer` with `token()` — and the current Transaction Token
   * as received (the draft: outbound calls carry it unchanged); on a 401, `forget()` and one retry.
   */
  const bearerFetch = (token: () => Promise<string>, forget: () => void, baseFetch: typeof fetch): typeof fetch =>
    (async (input: string | URL | Request, init: RequestInit = {}) => {
      const send = async () => {
        const headers = new Headers(init.headers);
        headers.set('authorization', `Bearer ${await token()}`);
        const txn = currentTransaction();
        if (txn && !headers.has(TXN_TOKEN_HEADER)) headers.set(TXN_TOKEN_HEADER, txn.token);
        // The called service continues the caller's trace (W3C Trace Context), as the audit trail's txn does.
        if (!headers.has('traceparent')) injectTraceContext(headers);
        return baseFetch(input, { ...init, headers });
      };
      const res = await send();
      if (res.status !== 401) return res;
      forget();
      return send();
    }) as typeof fetch;

  const client: TokenClient = {
    getToken,
    async exchange(req) {
      const key = `${createHash('sha256').update(req.subjectToken).digest('base64url')}\u0000${req.subjectTokenType ?? ''}\u0000${req.audience}\u0000${req.scope ?? ''}`;
      const hit = exchanged.get(key);
      if (hit && clock.now() < hit.renewAt) return hit.token;
      let p = exchangeInflight.get(key);
      if (!p) {
        p = post(exchangeForm(req.subjectToken, req.subjectTokenType, req.audience, req.scope))
          .then((c) => {
            if (exchanged.size >= 1000) exchanged.delete(exchanged.keys().next().value as string);
            exchanged.set(key, c);
            return c;
          })
          .finally(() => exchangeInflight.delete(key));
        exchangeInflight.set(key, p);
      }
      return (await p).token;
    },
    async transactionToken(req) {
      const audience = (await idp.metadata()).transaction_token_audience;
      if (typeof audience !== 'string')
        throw new TokenClientError('invalid_issuer', 0, 'the IdP does not name the audience of its Transaction Tokens');
      const form = exchangeForm(req.subjectToken, req.subjectTokenType, audience, req.scope);
      form.set('requested_token_type', TOKEN_TYPES.txn_token);
      if (req.requestContext) form.set('request_context', JSON.stringify(req.requestContext));
      if (req.requestDetails) form.set('request_details', JSON.stringify(req.requestDetails));
      return (await post(form)).token;
    },
    fetchFor(req = {}, baseFetch = options.workload?.fetch ?? globalThis.fetch) {
      return bearerFetch(
        () => getToken(req),
        () => cache.delete(cacheKey(req)),
        baseFetch,
      );
    },
    fetchOnBehalf(req, baseFetch = options.workload?.fetch ?? globalThis.fetch) {
      return bearerFetch(
        () => client.exchange(req),
        () => exchanged.clear(),
        baseFetch,
      );
    },
    clear: () => {
      cache.clear();
      exchanged.clear();
    },
  };
  return client;
}
