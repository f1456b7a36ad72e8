// Delegation on the wire: RFC 8693 token exchange (the `act` claim) and Transaction Tokens
// (draft-ietf-oauth-transaction-tokens): names, claim shapes and the one check of each.
import { checkAccessTokenTime } from './access_token_check.ts';
import type { AccessTokenClaims } from './claims.ts';
import type { StatusClaim } from './status_list.ts';

/** RFC 8693 §2.1 `grant_type` of a token exchange. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** RFC 8693 §3 token type identifiers, and the Transaction Tokens draft's (§IANA). */
export const TOKEN_TYPES = {
  access_token: 'urn:ietf:params:oauth:token-type:access_token',
  refresh_token: 'urn:ietf:params:oauth:token-type:refresh_token',
  id_token: 'urn:ietf:params:oauth:token-type:id_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  txn_token: 'urn:ietf:params:oauth:token-type:txn_token',
} as const;

/** JOSE `typ` of a Transaction Token (draft-ietf-oauth-transaction-tokens, Txn-Token Format). */
export const TXN_TOKEN_TYP = 'txntoken+jwt';

/** The HTTP header a Transaction Token travels in (never `Authorization`). */
export const TXN_TOKEN_HEADER = 'txn-token';

/** Deepest `act` nesting any party reads; a deeper chain is malformed, whatever the configured limit. */
export const MAX_ACT_NESTING = 32;

/**
 * RFC 8693 §4.1 `act`: the current actor, and in its own `act` the one before it. Latchkey's actors
 * are clients, named by `client_id` in `sub`.
 */
export interface ActorClaim {
  sub: string;
  act?: ActorClaim;
}

/** Claims of a Latchkey Transaction Token. */
export interface TransactionTokenClaims {
  iss: string;
  /** The trust domain the token is good in, and nowhere else. */
  aud: string;
  iat: number;
  exp: number;
  /** Unique per token (revocation, replay bookkeeping); `txn` names the transaction. */
  jti: string;
  /** The transaction: the same through the whole call chain, replacements included (RFC 8417 §2.2). */
  txn: string;
  /** The principal of the transaction: a user's `sub`, or a service's `client_id`. */
  sub: string;
  /** The purpose, never wider than the subject token's scope. */
  scope: string;
  /** The workload that requested this token (its SPIFFE ID). */
  req_wl: string;
  /** Immutable transaction context: what was asked (`request_details`), as the IdP accepted it. */
  tctx?: Record<string, unknown>;
  /** Environmental context of the request that started it (`request_context`, and the IdP's own). */
  rctx?: Record<string, unknown>;
  /** Earlier requesters, newest first (a replacement records who asked before). */
  act?: ActorClaim;
  /** The `jti` of the token the chain started from: revoking it revokes this one. */
  origin_jti?: string;
  /** Token Status List §6.2: where a verifier with no Latchkey code looks up whether the token is revoked. */
  status?: StatusClaim;
}

const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether `v` is a well-formed `act` claim: `sub` strings, nested at most {@link MAX_ACT_NESTING} deep. */
export function isActorClaim(v: unknown): v is ActorClaim {
  let at: unknown = v;
  for (let depth = 0; depth < MAX_ACT_NESTING; depth++) {
    if (!isObject(at) || !isStr(at.sub)) return false;
    if (at.act === undefined) return true;
    at = at.act;
  }
  return false;
}

/**
 * The actors of a token, newest first: `act.sub`, then `act.act.sub`, … (RFC 8693 §4.1: the
 * outermost `act` is the current actor). Empty for a token nobody acted on.
 *
 * @example
 * ```ts
 * actorChain({ act: { sub: 'orders', act: { sub: 'gateway' } } }); // ['orders', 'gateway']
 * ```
 */
export function actorChain(claims: { act?: unknown }): string[] {
  const out: string[] = [];
  let at = claims.act;
  while (isObject(at) && isStr(at.sub) && out.length < MAX_ACT_NESTING) {
    out.push(at.sub);
    at = at.act;
  }
  return out;
}

/** The `act` claim of a chain given newest first (the inverse of {@link actorChain}). */
export function actorClaim(chain: readonly string[]): ActorClaim | undefined {
  let act: ActorClaim | undefined;
  for (let i = chain.length - 1; i >= 0; i--)
    act = act ? { sub: chain[i] as string, act } : { sub: chain[i] as string };
  return act;
}

/** `typ` of a Transaction Token (compared without case, RFC 7515 §4.1.9). */
export function transactionTokenTypeOk(header: { typ?: unknown }): boolean {
  const typ = typeof header.typ === 'string' ? header.typ.toLowerCase() : '';
  return typ === TXN_TOKEN_TYP || typ === `application/${TXN_TOKEN_TYP}`;
}

export type TransactionTokenProblem =
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'claims_invalid'
  | 'token_expired'
  | 'token_not_yet_valid';

/**
 * The one check of a Transaction Token's claims, after its signature and `typ`: the IdP's issuer,
 * `aud` exactly the trust domain (a Txn-Token is not accepted outside it), the draft's required
 * claims (`iat`, `exp`, `txn`, `sub`, `scope`, `req_wl`) and Latchkey's `jti`, well typed, and the
 * times within `skew` of `now`.
 */
export function checkTransactionTokenClaims(
  payload: Record<string, unknown>,
  o: { issuer: string; trustDomain: string; now: number; skew: number },
): { ok: true; claims: TransactionTokenClaims } | { ok: false; problem: TransactionTokenProblem } {
  if (payload.iss !== o.issuer) return { ok: false, problem: 'wrong_issuer' };
  if (
    !isStr(payload.aud) ||
    !isNum(payload.iat) ||
    !isNum(payload.exp) ||
    !isStr(payload.jti) ||
    !isStr(payload.txn) ||
    !isStr(payload.sub) ||
    typeof payload.scope !== 'string' ||
    !isStr(payload.req_wl) ||
    (payload.tctx !== undefined && !isObject(payload.tctx)) ||
    (payload.rctx !== undefined && !isObject(payload.rctx)) ||
    (payload.act !== undefined && !isActorClaim(payload.act)) ||
    (payload.origin_jti !== undefined && !isStr(payload.origin_jti))
  )
    return { ok: false, problem: 'claims_invalid' };
  if (payload.aud !== o.trustDomain) return { ok: false, problem: 'wrong_audience' };
  const claims = payload as unknown as TransactionTokenClaims;
  const problem = checkAccessTokenTime(claims as unknown as AccessTokenClaims, o.now, o.skew);
  return problem ? { ok: false, problem } : { ok: true, claims };
}
