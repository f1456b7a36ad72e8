import { X509Certificate } from 'node:crypto';
import type { AccessTokenClaims } from '@latchkey/protocol';
import type { CurrentTransaction } from '../txn/transaction_context.ts';
import { VerifyError } from '../verify/verify_error.ts';
import type { Verifier } from '../verify/verifier.ts';

/**
 * What a framework adapter needs to answer: the claims, or an RFC 6750 status, headers and body.
 *
 * @example
 * ```ts
 * const { claims, status, headers, body } = await authenticateBearer(auth, { verifier });
 * ```
 */
export interface AuthOutcome {
  claims?: AccessTokenClaims;
  /** The request's Transaction Token, verified (when `transactionToken` asked for one and it came). */
  transaction?: CurrentTransaction;
  status?: 401 | 403;
  headers?: Record<string, string>;
  body?: { error: string; error_description: string };
}

/**
 * Options of the middleware.
 *
 * @example
 * ```ts
 * const options: AuthOptions = { verifier, scope: ['orders:read'], realm: 'orders' };
 * ```
 */
export interface AuthOptions {
  verifier: Pick<Verifier, 'verify'> & Partial<Pick<Verifier, 'verifyTransactionToken'>>;
  /**
   * The `Txn-Token` header (draft-ietf-oauth-transaction-tokens): `required` refuses a request
   * without a valid one (403 `invalid_txn_token`); `optional` verifies one when it comes. Either
   * way a valid one is on the request and forwarded by the token client's fetch wrappers.
   */
  transactionToken?: 'required' | 'optional';
  /** Scopes the request needs, all of them (RFC 6750 §3.1 insufficient_scope). */
  scope?: string | string[];
  /** realm in WWW-Authenticate (default "latchkey"). */
  realm?: string;
}

const quote = (s: string) => s.replace(/[\\"]/g, '');

/**
 * The client certificate of a request's TLS connection (for tokens bound to one, RFC 8705 §3),
 * from a socket (`req.socket`, Fastify's `request.raw.socket`). A connection's peer certificate
 * never changes, so it is read from node:tls once per connection.
 *
 * @example
 * ```ts
 * const cert = peerCertificateOf(req.socket); // X509Certificate | undefined
 * ```
 */
export function peerCertificateOf(socket: unknown): X509Certificate | undefined {
  const s = socket as { getPeerCertificate?: () => { raw?: Buffer } | null } | undefined;
  if (typeof s?.getPeerCertificate !== 'function') return undefined;
  let cert = peerCertificates.get(s);
  if (cert === undefined) {
    const raw = s.getPeerCertificate()?.raw;
    cert = raw ? new X509Certificate(raw) : null;
    peerCertificates.set(s, cert);
  }
  return cert ?? undefined;
}
const peerCertificates = new WeakMap<object, X509Certificate | null>();

/**
 * RFC 6750: reads the Bearer token (scheme case-insensitive, §2.1), verifies it — with the
 * connection's client certificate, `peerCertificate`, for a certificate-bound token (RFC 8705
 * §3: a bound token over another certificate or none is `invalid_token`) — and checks scope.
 * Errors never echo the token. The framework adapters are built on it; use it for any other one.
 *
 * @example
 * ```ts
 * import { authenticateBearer } from '@latchkey/sdk';
 * const outcome = await authenticateBearer(headers.authorization, { verifier, scope: 'orders:read' });
 * if (!outcome.claims) return respond(outcome.status, outcome.headers, outcome.body);
 * ```
 */
export async function authenticateBearer(
  authorization: string | undefined,
  options: AuthOptions,
  peerCertificate?: X509Certificate | Buffer,
  txnHeader?: string | string[],
): Promise<AuthOutcome> {
  const realm = quote(options.realm ?? 'latchkey');
  const m = /^bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(authorization ?? '');
  if (!m) {
    // §3.1: no credentials → 401 without an error code; malformed → invalid_request.
    if (!authorization)
      return {
        status: 401,
        headers: { 'www-authenticate': `Bearer realm="${realm}"` },
        body: { error: 'invalid_token', error_description: 'a bearer token is required' },
      };
    return {
      status: 401,
      headers: { 'www-authenticate': `Bearer realm="${realm}", error="invalid_request"` },
      body: { error: 'invalid_request', error_description: 'malformed Authorization header' },
    };
  }
  let claims: AccessTokenClaims;
  try {
    claims = await options.verifier.verify(m[1]!, peerCertificate ? { mtlsCertificate: peerCertificate } : {});
  } catch (err) {
    const code = err instanceof VerifyError ? err.code : 'token_malformed';
    return {
      status: 401,
      headers: { 'www-authenticate': `Bearer realm="${realm}", error="invalid_token", error_description="${code}"` },
      body: { error: 'invalid_token', error_description: code },
    };
  }
  const needed =
    options.scope === undefined ? [] : Array.isArray(options.scope) ? options.scope : options.scope.split(' ');
  const granted = new Set(typeof claims.scope === 'string' ? claims.scope.split(' ') : []);
  const missing = needed.filter((s) => !granted.has(s));
  if (missing.length > 0) {
    return {
      status: 403,
      headers: {
        'www-authenticate': `Bearer realm="${realm}", error="insufficient_scope", scope="${quote(needed.join(' '))}"`,
      },
      body: { error: 'insufficient_scope', error_description: `requires scope ${needed.join(' ')}` },
    };
  }
  if (!options.transactionToken) return { claims };
  const txn = await readTransaction(options, txnHeader);
  return 'body' in txn ? txn : { claims, ...(txn.transaction ? { transaction: txn.transaction } : {}) };
}

/** The `Txn-Token` header verified, or the 403 to answer. */
async function readTransaction(
  options: AuthOptions,
  header: string | string[] | undefined,
): Promise<{ transaction?: CurrentTransaction } | Required<Pick<AuthOutcome, 'status' | 'headers' | 'body'>>> {
  const refuse = (why: string) => ({
    status: 403 as const,
    headers: {},
    body: { error: 'invalid_txn_token', error_description: why },
  });
  // The draft: the header carries exactly one Txn-Token.
  if (Array.isArray(header)) return refuse('more than one Txn-Token header');
  if (header === undefined || header === '')
    return options.transactionToken === 'required' ? refuse('a Transaction Token is required') : {};
  if (!options.verifier.verifyTransactionToken) throw new TypeError('the verifier cannot verify Transaction Tokens');
  try {
    const claims = await options.verifier.verifyTransactionToken(header);
    return { transaction: { token: header.trim(), claims } };
  } catch (err) {
    return refuse(err instanceof VerifyError ? err.code : 'token_malformed');
  }
}
