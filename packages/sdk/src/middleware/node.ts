import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessTokenClaims } from '@latchkey/protocol';
import type { AuthorizeResult } from '../authorize/authorizer.ts';
import { authenticateBearer, peerCertificateOf, type AuthOptions } from './bearer.ts';
import { decidePermission, type PermissionOptions } from './permission.ts';
import type { CurrentTransaction } from '../txn/transaction_context.ts';

export { withTransaction, currentTransaction } from '../txn/transaction_context.ts';

/**
 * For plain `node:http` handlers: verifies the request's Bearer token; on failure it answers the
 * RFC 6750 error itself and resolves undefined.
 *
 * @example
 * ```ts
 * import { authenticate } from '@latchkey/sdk/node';
 * http.createServer(async (req, res) => {
 *   const claims = await authenticate(req, res, { verifier, scope: 'orders:read' });
 *   if (!claims) return;
 *   res.end(`hello ${claims.client_id}`);
 * });
 * ```
 */
export async function authenticate(
  req: IncomingMessage,
  res: ServerResponse,
  options: AuthOptions,
): Promise<AccessTokenClaims | undefined> {
  const outcome = await authenticateBearer(
    req.headers.authorization,
    options,
    peerCertificateOf(req.socket),
    req.headers['txn-token'],
  );
  if (outcome.claims) {
    if (outcome.transaction) transactions.set(req, outcome.transaction);
    return outcome.claims;
  }
  res
    .writeHead(outcome.status!, { ...outcome.headers, 'content-type': 'application/json', 'cache-control': 'no-store' })
    .end(JSON.stringify(outcome.body));
  return undefined;
}

const transactions = new WeakMap<IncomingMessage, CurrentTransaction>();

/**
 * The request's verified Transaction Token (after `authenticate` with `transactionToken`). Run the
 * rest of the handler in {@link withTransaction} to have the token client forward it.
 *
 * @example
 * ```ts
 * const txn = transactionOf(req);
 * if (txn) await withTransaction(txn, () => handle(req, res));
 * ```
 */
export function transactionOf(req: IncomingMessage): CurrentTransaction | undefined {
  return transactions.get(req);
}

/**
 * For plain `node:http` handlers, after `authenticate`: asks the authorizer whether the caller may
 * do `action` on the resource; on a deny it answers 403 `access_denied` itself and resolves undefined.
 *
 * @example
 * ```ts
 * import { authenticate, requirePermission } from '@latchkey/sdk/node';
 * const claims = await authenticate(req, res, { verifier });
 * if (!claims) return;
 * const decision = await requirePermission(req, res, claims, { authorizer, action: 'Orders::Action::"read"', resource: () => ({ type: 'Orders::Order', id }) });
 * if (!decision) return;
 * ```
 */
export async function requirePermission(
  req: IncomingMessage,
  res: ServerResponse,
  claims: AccessTokenClaims,
  options: PermissionOptions<IncomingMessage>,
): Promise<AuthorizeResult | undefined> {
  const outcome = await decidePermission(req, claims, options, transactions.get(req));
  if (outcome.allowed) return outcome.result;
  res
    .writeHead(outcome.status!, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    .end(JSON.stringify(outcome.body));
  return undefined;
}
