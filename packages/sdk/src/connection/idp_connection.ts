import { basicAuthorization } from '@latchkey/protocol';
import { SharedFeedStream } from './feed_stream.ts';

/**
 * How a service proves who it is to the IdP's own endpoints (feeds, policy, audit ingestion,
 * workload certificates): its client credentials (Basic), a function giving one of its access
 * tokens, or a token source such as a token client — which the connection asks for a token
 * audienced to the IdP itself, as the IdP requires (RFC 8707, RFC 9068 §4).
 */
export type IdpCredentials =
  | { clientId: string; clientSecret: string }
  | { token: (scope?: string) => Promise<string> }
  | { tokenSource: { getToken(request: { audience?: string; scope?: string }): Promise<string> } };

/** RFC 8414 metadata, the members the SDK reads. */
export interface IdpMetadata {
  issuer: string;
  token_endpoint: string;
  jwks_uri: string;
  /** Token Status List §9.1: where the IdP lists its status lists (their URIs start with it). */
  status_list_aggregation_endpoint?: string;
  [member: string]: unknown;
}

/**
 * One connection to the IdP, shared by everything a service embeds: the verifier, the authorizer,
 * the audit queue, the token client and the workload identity take it instead of each building its
 * own fetch, discovery and `Authorization` header.
 */
export interface IdpConnection {
  readonly issuer: string;
  /** fetch to reach the IdP (for a private CA: one with an undici dispatcher that trusts it). */
  readonly fetch: typeof fetch;
  /** The `Authorization` value for the IdP's own endpoints; `scope` asks for a privileged scope (`workload`). */
  authorization(scope?: string): Promise<string>;
  /** Whether credentials were given (reading feeds and policy needs them). */
  readonly authenticated: boolean;
  /** The issuer's RFC 8414 metadata, fetched once (again after a failure) and checked against the issuer. */
  metadata(): Promise<IdpMetadata>;
  /** The one feed stream (SSE) of this connection, shared by its consumers. */
  readonly feed: SharedFeedStream;
}

/**
 * Why the issuer's metadata could not be had: `unreachable` (network, HTTP error) or `mismatch`
 * (RFC 8414 §3.3: the metadata names another issuer).
 *
 * @example
 * ```ts
 * try {
 *   await idp.metadata();
 * } catch (err) {
 *   if (err instanceof IdpMetadataError && err.reason === 'mismatch') throw err; // misconfigured issuer
 * }
 * ```
 */
export class IdpMetadataError extends Error {
  readonly reason: 'unreachable' | 'mismatch';
  constructor(reason: 'unreachable' | 'mismatch', message: string) {
    super(message);
    this.name = 'IdpMetadataError';
    this.reason = reason;
  }
}

/** Options of {@link createIdpConnection}. */
export interface IdpConnectionOptions {
  issuer: string;
  credentials?: IdpCredentials;
  fetch?: typeof fetch;
}

/**
 * Creates the connection a service's Latchkey components share.
 *
 * @example
 * ```ts
 * import { createIdpConnection } from '@latchkey/sdk';
 * const idp = createIdpConnection({ issuer: 'https://idp.internal', credentials: { clientId: 'orders', clientSecret } });
 * const verifier = await createVerifier({ connection: idp, audience: 'https://orders.internal' });
 * const authz = await createAuthorizer({ connection: idp });
 * ```
 */
export function createIdpConnection(options: IdpConnectionOptions): IdpConnection {
  const f = options.fetch ?? globalThis.fetch;
  const c = options.credentials;
  let meta: Promise<IdpMetadata> | undefined;
  let feed: SharedFeedStream | undefined;
  const connection: IdpConnection = {
    issuer: options.issuer,
    fetch: f,
    authenticated: c !== undefined,
    get feed() {
      feed ??= new SharedFeedStream({
        issuer: options.issuer,
        fetch: f,
        authorization: () => connection.authorization(),
      });
      return feed;
    },
    async authorization(scope) {
      if (!c)
        throw new TypeError(
          'this connection has no credentials: give clientId and clientSecret, a token function or a token source',
        );
      if ('clientSecret' in c) return basicAuthorization(c.clientId, c.clientSecret);
      if ('token' in c) return `Bearer ${await c.token(scope)}`;
      // The IdP accepts only tokens audienced to itself at its own endpoints.
      return `Bearer ${await c.tokenSource.getToken({ audience: options.issuer, ...(scope ? { scope } : {}) })}`;
    },
    metadata() {
      meta ??= (async () => {
        let res: Response;
        try {
          res = await f(`${options.issuer}/.well-known/oauth-authorization-server`);
        } catch (err) {
          throw new IdpMetadataError('unreachable', `issuer metadata could not be fetched: ${(err as Error).message}`);
        }
        if (!res.ok) throw new IdpMetadataError('unreachable', `issuer metadata answered HTTP ${res.status}`);
        const m = (await res.json().catch(() => ({}))) as Partial<IdpMetadata>;
        // RFC 8414 §3.3: the metadata's issuer must be the one asked for.
        if (m.issuer !== options.issuer || typeof m.token_endpoint !== 'string' || typeof m.jwks_uri !== 'string') {
          throw new IdpMetadataError('mismatch', 'issuer metadata does not match the issuer');
        }
        return m as IdpMetadata;
      })().catch((err: unknown) => {
        meta = undefined;
        throw err;
      });
      return meta;
    },
  };
  return connection;
}

/**
 * The connection a component uses: the one given, or one made from the component's own
 * `issuer`, `credentials`/`token` and `fetch` options (the forms each accepted before).
 *
 * @example
 * ```ts
 * const conn = connectionOf({ issuer: 'https://idp.internal', credentials: { clientId: 'orders', clientSecret } });
 * await fetch(`${conn.issuer}/feeds/keys`, { headers: { authorization: await conn.authorization() } });
 * ```
 */
export function connectionOf(o: {
  connection?: IdpConnection;
  issuer?: string;
  credentials?: { clientId: string; clientSecret: string };
  token?: () => Promise<string>;
  fetch?: typeof fetch;
}): IdpConnection {
  if (o.connection) return o.connection;
  if (!o.issuer) throw new TypeError('give a connection or an issuer');
  if (o.credentials && o.token) throw new TypeError('give one of credentials and token');
  const credentials: IdpCredentials | undefined = o.credentials ?? (o.token ? { token: o.token } : undefined);
  return createIdpConnection({
    issuer: o.issuer,
    ...(credentials ? { credentials } : {}),
    ...(o.fetch ? { fetch: o.fetch } : {}),
  });
}
