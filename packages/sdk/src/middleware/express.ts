import type { AccessTokenClaims } from '@latchkey/protocol';
import type { AuthorizeResult } from '../authorize/authorizer.ts';
import { authenticateBearer, peerCertificateOf, type AuthOptions } from './bearer.ts';
import { decidePermission, type PermissionOptions } from './permission.ts';
import { type CurrentTransaction, withTransaction } from '../txn/transaction_context.ts';

interface ExpressRequestLike {
  headers: Record<string, string | string[] | undefined>;
  socket?: unknown;
  latchkey?: AccessTokenClaims;
  latchkeyTransaction?: CurrentTransaction;
  latchkeyDecision?: AuthorizeResult;
}
interface ExpressResponseLike {
  status(code: number): ExpressResponseLike;
  set(headers: Record<string, string>): ExpressResponseLike;
  json(body: unknown): unknown;
}

/**
 * Express middleware: verifies the Bearer token, sets `req.latchkey` to the claims, or answers
 * the RFC 6750 error. With `transactionToken`, also the `Txn-Token` header: on
 * `req.latchkeyTransaction`, and current for everything the rest of the request calls (the token
 * client's fetch wrappers forward it).
 *
 * @example
 * ```ts
 * import { requireToken } from '@latchkey/sdk/express';
 * app.get('/orders', requireToken({ verifier, scope: 'orders:read' }), (req, res) => res.json({ caller: req.latchkey.client_id }));
 * ```
 */
export function requireToken(options: AuthOptions) {
  return (req: ExpressRequestLike, res: ExpressResponseLike, next: (err?: unknown) => void): void => {
    const h = req.headers.authorization;
    authenticateBearer(
      Array.isArray(h) ? undefined : h,
      options,
      peerCertificateOf(req.socket),
      req.headers['txn-token'],
    ).then((outcome) => {
      if (outcome.claims) {
        req.latchkey = outcome.claims;
        const txn = outcome.transaction;
        if (!txn) return next();
        req.latchkeyTransaction = txn;
        withTransaction(txn, () => next());
        return;
      }
      res
        .status(outcome.status!)
        .set({ ...outcome.headers!, 'cache-control': 'no-store' })
        .json(outcome.body);
    }, next);
  };
}

/**
 * Express middleware after `requireToken`: asks the authorizer whether the caller may do `action`
 * on the resource the request names; a deny answers 403 `access_denied`. The decision is on
 * `req.latchkeyDecision`.
 *
 * @example
 * ```ts
 * import { requirePermission, requireToken } from '@latchkey/sdk/express';
 * app.get('/orders/:id', requireToken({ verifier }),
 *   requirePermission({ authorizer, action: 'Orders::Action::"read"', resource: (req) => ({ type: 'Orders::Order', id: req.params.id }) }),
 *   handler);
 * ```
 */
export function requirePermission<Req extends ExpressRequestLike>(options: PermissionOptions<Req>) {
  return (req: Req, res: ExpressResponseLike, next: (err?: unknown) => void): void => {
    decidePermission(req, req.latchkey, options).then((outcome) => {
      if (outcome.result) req.latchkeyDecision = outcome.result;
      if (outcome.allowed) {
        next();
        return;
      }
      res.status(outcome.status!).set({ 'cache-control': 'no-store' }).json(outcome.body);
    }, next);
  };
}
