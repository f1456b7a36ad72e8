import { X509Certificate } from 'node:crypto';
import {
  type Clock,
  epochSeconds,
  systemClock,
  accessTokenTypeOk,
  checkAccessTokenClaims,
  checkAccessTokenTime,
  checkCertificateBinding,
  parseCompactJws,
  verifyJws,
  type AccessTokenClaims,
  type AccessTokenProblem,
  certificateThumbprint,
  actorChain,
  checkTransactionTokenClaims,
  serviceClientId,
  statusListReferenceOf,
  transactionTokenTypeOk,
  type TransactionTokenClaims,
} from '@latchkey/protocol';
import { FeedClient, type FeedState } from './feed_client.ts';
import { JwksCache } from './jwks_cache.ts';
import { RevocationSet } from './revocation_set.ts';
import { StatusListCache } from './status_list_cache.ts';
import type { AuditQueue } from '../audit/audit_queue.ts';
import { VerifyError } from './verify_error.ts';
import { connectionOf, IdpMetadataError, type IdpConnection } from '../connection/idp_connection.ts';
import { failSpan, tracer, tracing } from '../tracing.ts';

/** Options of {@link createVerifier}. Durations are in seconds. */
export interface VerifierOptions {
  /** Where "now" comes from (epoch milliseconds); the system clock by default. Tests pass a fake one. */
  clock?: Clock;
  /** The IdP's issuer identifier, compared exactly with `iss` (or give `connection`). */
  issuer?: string;
  /** This service's audience: `aud` must contain it. */
  audience: string;
  /** The connection to the IdP this service's components share ({@link createIdpConnection}); instead of issuer, credentials and fetch. */
  connection?: IdpConnection;
  /** Client credentials for the revocation feed; without them revocations are not known locally. */
  credentials?: { clientId: string; clientSecret: string };
  /** fetch to reach the IdP (for a private CA: a fetch with an undici dispatcher that trusts it). */
  fetch?: typeof fetch;
  /** JWKS URL; default: from the issuer's RFC 8414 metadata. */
  jwksUri?: string;
  /** Clock skew allowed on exp / nbf / iat (default 30). */
  clockSkew?: number;
  /** How long to keep validating from cache while the IdP is unreachable (default 3600). */
  maxStaleness?: number;
  /** Least time between JWKS refetches caused by unknown kids (default 30). */
  jwksCooldown?: number;
  /** Verified tokens remembered, so a token seen again costs a lookup (default 10,000). */
  cacheSize?: number;
  /** Poll interval of the revocation feed while its stream is down (default 10). */
  pollInterval?: number;
  /**
   * An audit queue ({@link createAuditQueue}): each rejected token is reported as a
   * `token.rejected` event (code, jti, kid, client_id as presented — never the token), so the IdP's
   * detectors see revoked tokens in use. Reporting never blocks or fails a verification.
   */
  audit?: Pick<AuditQueue, 'record' | 'dropped' | 'pending'>;
  /**
   * Most services a token's delegation chain (RFC 8693 `act`; a Transaction Token's requesters)
   * may name; a longer one is refused (`delegation_refused`). Default: no limit beyond the IdP's.
   */
  maxActDepth?: number;
  /** Services allowed to appear in a delegation chain; a token naming any other is refused (`delegation_refused`). */
  allowedActors?: readonly string[];
  /**
   * The trust domain Transaction Tokens must be for (their `aud`); default: the IdP's
   * `transaction_token_audience` metadata.
   */
  trustDomain?: string;
  /**
   * The IdP's Token Status Lists (the `status` claim, draft-ietf-oauth-status-list) as a second
   * source of revocations: `fallback` (default) consults them while the revocation feed is down or
   * absent (no credentials) — a token the list marks revoked is refused, and a list that cannot be
   * had changes nothing; `always` consults them for every token; `off` never. A list is fetched
   * once per `ttl` (its first use waits for it) and verified against the IdP's JWKS.
   */
  statusList?: 'fallback' | 'always' | 'off';
}

/** What {@link Verifier.health} reports. */
export interface VerifierHealth {
  /** False once the IdP has been unreachable for longer than `maxStaleness`. */
  ok: boolean;
  jwks: { keys: number; ageSeconds: number | null; lastError: string | null };
  revocations: { entries: number; cursor: string; ageSeconds: number | null; feed: FeedState };
  /** The Token Status Lists held (`statusList` option), and why the last fetch failed. */
  statusLists?: { lists: number; lastError: string | null };
  cachedTokens: number;
  /** Access-token verifications since start, by result: `ok` or a {@link VerifyError} code. */
  verifications: Record<string, number>;
  /** The audit queue's backlog and what it had to drop, when one is attached. */
  audit?: { pending: number; dropped: number };
}

export interface Verifier {
  /**
   * Verifies an access token locally and returns its claims, or throws a {@link VerifyError}.
   * `mtlsCertificate` is the peer certificate of the connection, for tokens bound to one (RFC 8705 §3).
   */
  verify(token: string, options?: { mtlsCertificate?: X509Certificate | Buffer }): Promise<AccessTokenClaims>;
  /**
   * Verifies a Transaction Token (the `Txn-Token` header's value, draft-ietf-oauth-transaction-tokens):
   * `typ` `txntoken+jwt`, signed by the IdP's key, `aud` the trust domain, unexpired, not revoked
   * (nor the token its chain started from, nor its subject), the chain within `maxActDepth` and
   * `allowedActors`. Returns its claims or throws a {@link VerifyError}. An access token is refused
   * here (`wrong_type`), and a Transaction Token by {@link Verifier.verify}.
   */
  verifyTransactionToken(headerValue: string | undefined): Promise<TransactionTokenClaims>;
  /**
   * Whether the client was revoked at or after `issuedAt` (epoch seconds), from the revocation
   * feed: what a workload identity asks of a peer's certificate.
   */
  clientRevoked(clientId: string, issuedAt: number): boolean;
  /** Calls `listener` with the id of each client revocation as it arrives; returns the unsubscribe function. */
  onClientRevoked(listener: (clientId: string) => void): () => void;
  health(): VerifierHealth;
  close(): void;
}

const ALLOWED = new Set(['ES256', 'EdDSA', 'RS256']);
const CLAIM_MESSAGES: Record<AccessTokenProblem, string> = {
  wrong_type: 'not an RFC 9068 access token',
  wrong_issuer: 'unexpected issuer',
  wrong_audience: 'the token is not for this audience',
  claims_invalid: 'required claims are missing or malformed',
  token_expired: 'the token has expired',
  token_not_yet_valid: 'the token is not valid yet',
  binding_mismatch: 'the token is bound to another certificate',
};
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** A Transaction Token's chain, newest first: its requester (`req_wl`: a SPIFFE ID's service, or as given), then `act`. */
const txnChain = (c: TransactionTokenClaims): string[] => [serviceClientId(c.req_wl) ?? c.req_wl, ...actorChain(c)];

/**
 * Creates a verifier that checks Latchkey access tokens in-process, on synchronous node:crypto,
 * against keys and revocations it keeps fresh from the IdP. It never calls the IdP on the request
 * path (except one JWKS refetch, shared, for an unknown kid).
 *
 * @example
 * ```ts
 * import { createVerifier } from '@latchkey/sdk/verify';
 * const verifier = await createVerifier({
 *   issuer: 'https://idp.internal',
 *   audience: 'https://orders.internal',
 *   credentials: { clientId: 'orders', clientSecret: process.env.ORDERS_SECRET! },
 * });
 * const claims = await verifier.verify(bearerToken); // throws VerifyError
 * ```
 */
export async function createVerifier(options: VerifierOptions): Promise<Verifier> {
  const conn = connectionOf(options);
  const f = conn.fetch;
  const issuer = conn.issuer;
  const clock = options.clock ?? systemClock;
  const skew = options.clockSkew ?? 30;
  const maxStalenessMs = (options.maxStaleness ?? 3600) * 1000;
  const cacheSize = options.cacheSize ?? 10_000;
  let jwksUri = options.jwksUri;
  if (!jwksUri) {
    try {
      jwksUri = (await conn.metadata()).jwks_uri;
    } catch (err) {
      if (err instanceof IdpMetadataError)
        throw new VerifyError(err.reason === 'mismatch' ? 'wrong_issuer' : 'issuer_unreachable', err.message);
      throw err;
    }
  }
  const jwks = new JwksCache({
    jwksUri,
    fetch: f,
    cooldownMs: (options.jwksCooldown ?? 30) * 1000,
    defaultMaxAgeMs: 300_000,
    clock,
  });
  await jwks.refresh().catch((err: Error) => {
    throw new VerifyError('issuer_unreachable', `JWKS could not be fetched: ${err.message}`);
  });
  const revocations = new RevocationSet(issuer);
  // Verified tokens: Map iteration order is insertion order, which makes it an LRU.
  const cache = new Map<string, { claims: AccessTokenClaims; kid: string }>();
  let feed: FeedClient | undefined;
  if (conn.authenticated) {
    feed = new FeedClient({
      connection: conn,
      pollIntervalMs: (options.pollInterval ?? 10) * 1000,
      revocations,
      jwks,
      clock,
    });
    await feed.start();
  }
  const pruner = setInterval(() => revocations.prune(epochSeconds(clock)), 60_000);
  pruner.unref();
  const pollMs = (options.pollInterval ?? 10) * 1000;
  const statusMode = options.statusList ?? 'fallback';
  let statusLists: StatusListCache | undefined;
  if (statusMode !== 'off') {
    const aggregation = await conn
      .metadata()
      .then((m) => m.status_list_aggregation_endpoint)
      .catch(() => undefined);
    if (typeof aggregation === 'string' && aggregation.startsWith(`${issuer}/`))
      statusLists = new StatusListCache({
        clock,
        issuer,
        prefix: `${aggregation}/`,
        fetch: f,
        signedByIdp,
        skew,
      });
  }
  /** The feed is neither streaming nor answered a poll for two poll intervals (or there is none): the status lists stand in. */
  const feedDown = (): boolean => !feed || (feed.state !== 'connected' && clock.now() - feed.lastContact > 2 * pollMs);
  /**
   * Token Status List §8.3: a token the list marks anything but VALID (0) is refused. Undefined
   * (no await on the hot path) when the lists are not consulted for this token.
   */
  const statusCheck = (claims: { status?: unknown }): Promise<void> | undefined => {
    if (!statusLists || claims.status === undefined || (statusMode === 'fallback' && !feedDown())) return undefined;
    const ref = statusListReferenceOf(claims);
    if (!ref) return undefined;
    const lists = statusLists;
    return (async () => {
      const status = await lists.status(ref);
      if (status !== undefined && status !== 0)
        throw new VerifyError('token_revoked', "the IdP's status list marks the token revoked");
    })();
  };

  const lastContact = (): number =>
    Math.max(jwks.lastSuccess, feed?.lastContact ?? 0, feed?.state === 'connected' ? clock.now() : 0);

  /** `maxActDepth` and `allowedActors` over a chain (newest first). */
  const checkChain = (chain: readonly string[]): void => {
    if (options.maxActDepth !== undefined && chain.length > options.maxActDepth)
      throw new VerifyError(
        'delegation_refused',
        `the delegation chain names ${chain.length} services; at most ${options.maxActDepth} may act`,
      );
    const allowed = options.allowedActors;
    const stranger = allowed ? chain.find((a) => !allowed.includes(a)) : undefined;
    if (stranger !== undefined)
      throw new VerifyError(
        'delegation_refused',
        `${JSON.stringify(stranger.slice(0, 64))} may not act in a delegation chain`,
      );
  };

  const checkTime = (claims: AccessTokenClaims, now: number): void => {
    const problem = checkAccessTokenTime(claims, now, skew);
    if (problem === 'token_expired') throw new VerifyError('token_expired', 'the token has expired');
    if (problem) throw new VerifyError('token_not_yet_valid', 'the token is not valid yet');
  };

  const thumbprints = new WeakMap<X509Certificate, string>();
  const checkBinding = (claims: AccessTokenClaims, cert: X509Certificate | Buffer | undefined): void => {
    if (claims.cnf === undefined) return;
    if (!cert)
      throw new VerifyError('binding_mismatch', 'the token is bound to a client certificate and none was presented');
    // RFC 8705 §3.1: base64url SHA-256 of the DER certificate — once per X509Certificate object
    // (immutable; the middleware hands over one per connection), every time for a Buffer.
    let thumbprint = cert instanceof X509Certificate ? thumbprints.get(cert) : undefined;
    if (thumbprint === undefined) {
      thumbprint = certificateThumbprint(cert instanceof X509Certificate ? cert.raw : cert);
      if (cert instanceof X509Certificate) thumbprints.set(cert, thumbprint);
    }
    if (checkCertificateBinding(claims, thumbprint))
      throw new VerifyError('binding_mismatch', 'the token is bound to another certificate');
  };

  const report = (token: unknown, err: VerifyError): void => {
    if (!options.audit || err.code === 'issuer_unreachable') return;
    // What the token claims, unverified: enough to find it in the IdP's log, never the token itself.
    const jws = typeof token === 'string' && token.length <= 8192 ? parseCompactJws(token) : undefined;
    const p = jws?.payload ?? {};
    const str = (v: unknown): string | undefined =>
      typeof v === 'string' && v.length > 0 && v.length <= 256 ? v : undefined;
    const clientId = str(p.client_id);
    const detail: Record<string, unknown> = { why: err.message };
    for (const [k, v] of [
      ['jti', str(p.jti)],
      ['kid', str(jws?.header.kid)],
      ['token_client_id', clientId],
      ['iss', str(p.iss)],
    ] as const)
      if (v !== undefined) detail[k] = v;
    options.audit.record({
      type: 'token.rejected',
      outcome: 'failure',
      actor: clientId ?? 'unknown',
      ...(str(p.sub) ? { subject: str(p.sub)! } : {}),
      reason: err.code,
      detail,
    });
  };

  /** The audience of Transaction Tokens: given, or read from the IdP's metadata at the first one. */
  let trustDomain = options.trustDomain;
  const verifications: Record<string, number> = { ok: 0 };
  const verifier: Verifier = {
    async verify(token, opts = {}) {
      const span = tracing() ? tracer.startSpan('latchkey.verify') : undefined;
      try {
        const claims = await verifyToken(token, opts);
        verifications.ok!++;
        span?.setAttribute('latchkey.client_id', claims.client_id);
        return claims;
      } catch (err) {
        const code = err instanceof VerifyError ? err.code : 'error';
        verifications[code] = (verifications[code] ?? 0) + 1;
        if (err instanceof VerifyError) report(token, err);
        if (span) failSpan(span, err);
        throw err;
      } finally {
        span?.end();
      }
    },
    async verifyTransactionToken(headerValue) {
      try {
        return await verifyTxn(headerValue);
      } catch (err) {
        if (err instanceof VerifyError) report(headerValue, err);
        throw err;
      }
    },
    clientRevoked: (clientId, issuedAt) => revocations.clientRevoked(clientId, issuedAt),
    onClientRevoked: (listener) =>
      revocations.onApply((e) => {
        if (e.kind === 'client') listener(e.ref);
      }),
    health() {
      const age = (t: number) => (t > 0 ? Math.round((clock.now() - t) / 1000) : null);
      return {
        ok: clock.now() - lastContact() <= maxStalenessMs,
        jwks: { keys: jwks.size, ageSeconds: age(jwks.lastSuccess), lastError: jwks.lastError ?? null },
        revocations: {
          entries: revocations.size,
          cursor: revocations.cursor,
          ageSeconds: age(feed?.lastContact ?? 0),
          feed: feed?.state ?? 'off',
        },
        ...(statusLists ? { statusLists: { lists: statusLists.size, lastError: statusLists.lastError ?? null } } : {}),
        cachedTokens: cache.size,
        verifications: { ...verifications },
        ...(options.audit ? { audit: { pending: options.audit.pending, dropped: options.audit.dropped } } : {}),
      };
    },
    close() {
      clearInterval(pruner);
      feed?.close();
    },
  };
  return verifier;

  /** The signed payload of a JWS by one of the IdP's keys (`typOk` its header's `typ`), and that key's id. */
  async function signedByIdp(
    token: unknown,
    typOk: (header: Record<string, unknown>) => boolean,
    what: string,
  ): Promise<{ payload: Record<string, unknown>; kid: string }> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192)
      throw new VerifyError('token_malformed', 'not a compact JWS');
    const jws = parseCompactJws(token);
    if (!jws) throw new VerifyError('token_malformed', 'not a compact JWS');
    const { header } = jws;
    // RFC 8725 §3.1 / §2.1: only the allowlisted asymmetric algorithms; never none or HMAC.
    if (typeof header.alg !== 'string' || !ALLOWED.has(header.alg))
      throw new VerifyError('algorithm_not_allowed', 'algorithm not allowed');
    // RFC 7515 §4.1.11: a critical extension we do not understand must be refused.
    if (header.crit !== undefined) throw new VerifyError('critical_header_unsupported', 'unsupported critical header');
    if (!typOk(header)) throw new VerifyError('wrong_type', `not ${what}`);
    if (!isStr(header.kid)) throw new VerifyError('key_unknown', 'the token names no key');
    if (revocations.keyRevoked(header.kid)) throw new VerifyError('token_revoked', 'its signing key was revoked');
    // jku, x5u, jwk and x5c are never read: keys come from the issuer's JWKS only.
    const key = await jwks.resolve(header.kid);
    if (!key) throw new VerifyError('key_unknown', 'the signing key is not in the issuer JWKS');
    if (key.alg !== header.alg) throw new VerifyError('algorithm_not_allowed', 'the algorithm does not match the key');
    if (!verifyJws(key.alg, key.key, jws.signingInput, jws.signature))
      throw new VerifyError('signature_invalid', 'signature verification failed');
    return { payload: jws.payload, kid: key.kid };
  }

  async function verifyTxn(headerValue: string | undefined): Promise<TransactionTokenClaims> {
    const now = epochSeconds(clock);
    if (clock.now() - lastContact() > maxStalenessMs)
      throw new VerifyError('issuer_unreachable', 'the IdP has been unreachable for longer than the allowed staleness');
    if (trustDomain === undefined) {
      const m = await conn.metadata().catch(() => undefined);
      if (typeof m?.transaction_token_audience !== 'string')
        throw new VerifyError('issuer_unreachable', 'the IdP does not name the audience of its Transaction Tokens');
      trustDomain = m.transaction_token_audience;
    }
    const { payload, kid } = await signedByIdp(headerValue?.trim(), transactionTokenTypeOk, 'a Transaction Token');
    const r = checkTransactionTokenClaims(payload, { issuer, trustDomain, now, skew });
    if (!r.ok) throw new VerifyError(r.problem, CLAIM_MESSAGES[r.problem]);
    const why = revocations.check(kid, r.claims);
    if (why) throw new VerifyError('token_revoked', why);
    checkChain(txnChain(r.claims));
    await statusCheck(r.claims);
    return r.claims;
  }

  async function verifyToken(
    token: string,
    opts: { mtlsCertificate?: X509Certificate | Buffer },
  ): Promise<AccessTokenClaims> {
    const now = epochSeconds(clock);
    if (clock.now() - lastContact() > maxStalenessMs)
      throw new VerifyError('issuer_unreachable', 'the IdP has been unreachable for longer than the allowed staleness');
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192)
      throw new VerifyError('token_malformed', 'not a compact JWS');
    const hit = cache.get(token);
    if (hit) {
      checkTime(hit.claims, now);
      const why = revocations.check(hit.kid, hit.claims);
      if (why) throw new VerifyError('token_revoked', why);
      checkBinding(hit.claims, opts.mtlsCertificate);
      const listed = statusCheck(hit.claims);
      if (listed) await listed;
      cache.delete(token);
      cache.set(token, hit);
      return hit.claims;
    }
    // RFC 9068 §4: the typ of an access token.
    const { payload, kid } = await signedByIdp(token, accessTokenTypeOk, 'an RFC 9068 access token');
    const key = { kid };
    // The same claims check the IdP makes of its own tokens (protocol's checkAccessTokenClaims).
    const checked = checkAccessTokenClaims(payload, { issuer, audience: options.audience, now, skew });
    if (!checked.ok) throw new VerifyError(checked.problem, CLAIM_MESSAGES[checked.problem]);
    const claims = checked.claims;
    const why = revocations.check(key.kid, claims);
    if (why) throw new VerifyError('token_revoked', why);
    checkBinding(claims, opts.mtlsCertificate);
    if (claims.act !== undefined) checkChain(actorChain(claims));
    const listed = statusCheck(claims);
    if (listed) await listed;
    if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
    cache.set(token, { claims, kid: key.kid });
    return claims;
  }
}
