import {
  type AccessTokenClaims,
  actorChain,
  checkAccessTokenTime,
  checkTransactionTokenClaims,
  serviceClientId,
  TOKEN_TYPES,
  transactionTokenTypeOk,
  type TransactionTokenClaims,
} from '@latchkey/protocol';
import { invalidRequest, type OAuthError } from '../errors.ts';
import type { KeyRing } from '../keys/key_ring.ts';
import { verifyOwnJws, verifyOwnToken } from '../keys/own_token_verifier.ts';
import type { RevocationLog } from '../revocation/revocation_log.ts';

/** What a token exchange needs to know of the token it is given, whichever kind it is. */
export interface SubjectToken {
  type: 'access_token' | 'id_token' | 'txn_token';
  sub: string;
  /** The client the token was issued to (an access token's `client_id`, an ID token's `aud`; a Txn-Token's requester). */
  clientId: string;
  /** Its scope: an ID token grants none. */
  scope: string[];
  /** Audiences the token was for (a Txn-Token's: the trust domain). */
  audiences: string[];
  exp: number;
  iat: number;
  /** Absent for an ID token. */
  jti: string | undefined;
  /** Services that acted before, newest first (`act`; for a Txn-Token, its history and its requester). */
  chain: string[];
  /** The `jti` the chain started from. */
  originJti: string | undefined;
  roles?: string[];
  groups?: string[];
  attributes?: Record<string, unknown>;
  /** A Txn-Token's own claims (a replacement keeps its `txn`, `tctx` and `rctx`). */
  txn?: TransactionTokenClaims;
}

export interface SubjectTokenDeps {
  issuer: string;
  trustDomain: string;
  keys: Pick<KeyRing, 'publishedKey'>;
  revocations: Pick<RevocationLog, 'check'>;
  clockSkew: number;
  /**
   * Access tokens whose signature and claims were checked already (a gateway exchanges the same
   * user token for every request it serves): by the token itself, with its key id. A hit is still
   * checked for time, for its key being published, and for revocation.
   */
  verified?: Map<string, { kid: string; claims: AccessTokenClaims }>;
}

/** Verified access tokens remembered (LRU), when the deps give a cache. */
export const VERIFIED_CACHE_SIZE = 10_000;

const refused = (what: string, why: string): OAuthError => invalidRequest(`${what} ${why}`);

/**
 * Reads a `subject_token` (or `actor_token`) of the given RFC 8693 type — a Latchkey access token,
 * an ID token this IdP signed, or a Latchkey Transaction Token — verified as its own kind (`typ`,
 * signature by a published key with that key's algorithm, issuer, times) and not revoked. Any
 * failure is `invalid_request` (RFC 8693 §2.2.2: an invalid or unacceptable subject or actor
 * token). A refresh token is never a subject (the Transaction Tokens draft, Subject Token Types).
 */
export async function readSubjectToken(
  deps: SubjectTokenDeps,
  what: 'subject_token' | 'actor_token',
  token: string,
  type: string,
  now: number,
): Promise<SubjectToken> {
  if (token.length > 8192) throw refused(what, 'is too long');
  let read: SubjectToken;
  if (type === TOKEN_TYPES.access_token) read = accessToken(deps, what, token, now);
  else if (type === TOKEN_TYPES.id_token) read = idToken(deps, what, token, now);
  else if (type === TOKEN_TYPES.txn_token) read = txnToken(deps, what, token, now);
  else
    throw refused(
      `${what}_type`,
      `must be ${TOKEN_TYPES.access_token}, ${TOKEN_TYPES.id_token} or ${TOKEN_TYPES.txn_token}`,
    );
  const revoked = await deps.revocations.check({
    jti: read.jti ?? '',
    iat: read.iat,
    client_id: read.clientId,
    sub: read.sub,
    ...(read.originJti ? { origin_jti: read.originJti } : {}),
  });
  if (revoked) throw refused(what, `is revoked (${revoked.replace('_', ' ')})`);
  return read;
}

function accessToken(deps: SubjectTokenDeps, what: string, token: string, now: number): SubjectToken {
  const c = verifiedAccessToken(deps, what, token, now);
  return {
    type: 'access_token',
    sub: c.sub,
    clientId: c.client_id,
    scope: c.scope ? c.scope.split(' ') : [],
    audiences: Array.isArray(c.aud) ? c.aud : [c.aud],
    exp: c.exp,
    iat: c.iat,
    jti: c.jti,
    chain: actorChain(c),
    originJti: c.origin_jti,
    ...(c.roles ? { roles: c.roles } : {}),
    ...(c.groups ? { groups: c.groups } : {}),
    ...(c.attributes ? { attributes: c.attributes } : {}),
  };
}

/** An access token of ours, verified — or, seen before, from the cache (time and key re-checked). */
function verifiedAccessToken(deps: SubjectTokenDeps, what: string, token: string, now: number): AccessTokenClaims {
  const cache = deps.verified;
  const hit = cache?.get(token);
  if (hit && deps.keys.publishedKey(hit.kid)) {
    const late = checkAccessTokenTime(hit.claims, now, deps.clockSkew);
    if (late) throw refused(what, late === 'token_expired' ? 'has expired' : 'is not valid yet');
    cache?.delete(token);
    cache?.set(token, hit);
    return hit.claims;
  }
  const r = verifyOwnToken(deps.keys, deps.issuer, token, now, deps.clockSkew);
  if (!r.valid)
    throw refused(what, r.reason === 'expired' ? 'has expired' : `is not a valid access token (${r.reason})`);
  if (cache) {
    if (cache.size >= VERIFIED_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    cache.set(token, { kid: r.kid, claims: r.claims });
  }
  return r.claims;
}

function idToken(deps: SubjectTokenDeps, what: string, token: string, now: number): SubjectToken {
  const p = verifyOwnJws(deps.keys, token, (h) => h.typ === 'JWT');
  if (!p || p.iss !== deps.issuer || typeof p.sub !== 'string' || typeof p.aud !== 'string')
    throw refused(what, 'is not a valid ID token');
  if (typeof p.exp !== 'number' || typeof p.iat !== 'number') throw refused(what, 'is not a valid ID token');
  if (now > p.exp + deps.clockSkew) throw refused(what, 'has expired');
  return {
    type: 'id_token',
    sub: p.sub,
    clientId: p.aud,
    scope: [],
    audiences: [p.aud],
    exp: p.exp,
    iat: p.iat,
    jti: undefined,
    chain: [],
    originJti: undefined,
  };
}

/** A Transaction Token of ours, checked (not for revocation): its claims, or why not. */
export function checkOwnTransactionToken(
  deps: Omit<SubjectTokenDeps, 'revocations'>,
  token: string,
  now: number,
): { ok: true; claims: TransactionTokenClaims } | { ok: false; why: string } {
  const p = token.length <= 8192 ? verifyOwnJws(deps.keys, token, transactionTokenTypeOk) : undefined;
  if (!p) return { ok: false, why: 'is not a valid Transaction Token' };
  const r = checkTransactionTokenClaims(p, {
    issuer: deps.issuer,
    trustDomain: deps.trustDomain,
    now,
    skew: deps.clockSkew,
  });
  return r.ok ? r : { ok: false, why: r.problem === 'token_expired' ? 'has expired' : `is not valid (${r.problem})` };
}

function txnToken(deps: SubjectTokenDeps, what: string, token: string, now: number): SubjectToken {
  const r = checkOwnTransactionToken(deps, token, now);
  if (!r.ok) throw refused(what, r.why);
  const c = r.claims;
  // Its requester acted on the transaction before whoever replaces it now.
  const requester = serviceClientId(c.req_wl, deps.trustDomain) ?? c.req_wl;
  return {
    type: 'txn_token',
    sub: c.sub,
    clientId: requester,
    scope: c.scope ? c.scope.split(' ') : [],
    audiences: [c.aud],
    exp: c.exp,
    iat: c.iat,
    jti: c.jti,
    chain: [requester, ...actorChain(c)],
    originJti: c.origin_jti,
    txn: c,
  };
}
