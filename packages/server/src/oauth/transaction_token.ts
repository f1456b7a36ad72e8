import { randomUUID } from 'node:crypto';
import { TXN_TOKEN_TYP, type TransactionTokenClaims } from '@latchkey/protocol';
import type { KeyRing } from '../keys/key_ring.ts';
import { RandomPool } from '../random_pool.ts';
import type { MintedToken, TokenStatusSource } from './access_token.ts';

const ids = new RandomPool();

export interface TransactionTokenInput {
  trustDomain: string;
  sub: string;
  scope: string;
  /** The requesting workload's SPIFFE ID. */
  requester: string;
  ttl: number;
  /** A replacement keeps the transaction; a new one gets a new id. */
  txn?: string | undefined;
  tctx?: Record<string, unknown> | undefined;
  rctx?: Record<string, unknown> | undefined;
  act?: TransactionTokenClaims['act'];
  originJti?: string | undefined;
}

/**
 * A Transaction Token (draft-ietf-oauth-transaction-tokens, Txn-Token Format): `typ`
 * `txntoken+jwt` — so it never passes for an access token (`at+jwt`) nor an access token for it —
 * signed by the IdP's current key (published in its JWKS), `aud` the trust domain, short-lived.
 */
export async function mintTransactionToken(
  deps: { keys: Pick<KeyRing, 'signDocument'>; statusLists?: TokenStatusSource | undefined },
  issuer: string,
  input: TransactionTokenInput & { clientId: string },
  now: number,
): Promise<MintedToken<TransactionTokenClaims>> {
  const claims: TransactionTokenClaims = {
    iss: issuer,
    aud: input.trustDomain,
    iat: now,
    exp: now + input.ttl,
    jti: ids.id(16),
    txn: input.txn ?? randomUUID(),
    sub: input.sub,
    scope: input.scope,
    req_wl: input.requester,
    ...(input.tctx ? { tctx: input.tctx } : {}),
    ...(input.rctx ? { rctx: input.rctx } : {}),
    ...(input.act ? { act: input.act } : {}),
    ...(input.originJti ? { origin_jti: input.originJti } : {}),
  };
  if (deps.statusLists) {
    const status = await deps.statusLists.reference();
    claims.jti = status.jti;
    claims.status = { status_list: status.claim };
  }
  const { jws, kid } = deps.keys.signDocument(claims, TXN_TOKEN_TYP);
  return { token: jws, claims, statusEntry: deps.statusLists?.entryOf(claims, input.clientId, kid) };
}
