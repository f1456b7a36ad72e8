import { AsyncLocalStorage } from 'node:async_hooks';
import type { TransactionTokenClaims } from '@latchkey/protocol';

/** The Transaction Token a request arrived with: the header's value as received, and its verified claims. */
export interface CurrentTransaction {
  token: string;
  claims: TransactionTokenClaims;
}

const store = new AsyncLocalStorage<CurrentTransaction>();

/**
 * Runs `fn` with `transaction` as the current one: everything it calls, synchronously or later,
 * sees it through {@link currentTransaction} — which is how the token client's fetch wrapper
 * forwards the `Txn-Token` header downstream unchanged (the draft: outbound calls MUST carry it as
 * received). The middleware does this for each request that carries one.
 *
 * @example
 * ```ts
 * import { withTransaction } from '@latchkey/sdk';
 * await withTransaction({ token, claims }, () => ordersFetch('https://billing.internal/charge'));
 * ```
 */
export function withTransaction<T>(transaction: CurrentTransaction, fn: () => T): T {
  return store.run(transaction, fn);
}

/**
 * The Transaction Token of the request being handled, if it carried one.
 *
 * @example
 * ```ts
 * import { currentTransaction } from '@latchkey/sdk';
 * console.log(currentTransaction()?.claims.txn);
 * ```
 */
export function currentTransaction(): CurrentTransaction | undefined {
  return store.getStore();
}
