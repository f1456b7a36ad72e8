import type { AccessTokenClaims } from '@latchkey/protocol';
import type { AuthorizeResult } from '../authorize/authorizer.ts';
import { authenticateBearer, peerCertificateOf, type AuthOptions } from './bearer.ts';
import { decidePermission, type PermissionOptions } from './permission.ts';
import { type CurrentTransaction, withTransaction } from '../txn/transaction_context.ts';

/** The minimal Fastify request/reply surface used, so the SDK does not depend on Fastify. */
interface FastifyRequestLike {
  headers: Record<string, string | string[] | undefined>;
  raw?: { socket?: unknown };
  latchkey?: AccessTokenClaims;
  latchkeyTransaction?: CurrentTransaction;
  latchkeyDecision?: AuthorizeResult;
}
interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  headers(h: Record<string, string>): FastifyReplyLike;
  send(body: unknown): unknown;
}

/**
 * A Fastify `onRequest`/`preHandler` hook: verifies the Bearer token, sets `request.latchkey` to
 * the claims, or answers the RFC 6750 error. With `transactionToken`, also the `Txn-Token` header:
 * on `request.latchkeyTransaction`, and current for the rest of the request (the token client's
 * fetch wrappers forward it). A callback hook, so the rest of the request runs inside that context.
 *
 * @example
 * ```ts
 * import { requireToken } from '@latchkey/sdk/fastify';
 * app.get('/orders', { onRequest: requireToken({ verifier, scope: 'orders:read' }) }, (req) => ({ caller: req.latchkey!.client_id }));
 * ```
 */
export function requireToken(options: AuthOptions) {
  return (request: FastifyRequestLike, reply: FastifyReplyLike, done: (err?: Error) => void): void => {
    const h = request.headers.authorization;
    authenticateBearer(
      Array.isArray(h) ? undefined : h,
      options,
      peerCertificateOf(request.raw?.socket),
      request.headers['txn-token'],
    ).then(
      (outcome) => {
        if (outcome.claims) {
          request.latchkey = outcome.claims;
          const txn = outcome.transaction;
          if (!txn) return done();
          request.latchkeyTransaction = txn;
          withTransaction(txn, () => done());
          return;
        }
        reply
          .code(outcome.status!)
          .headers({ ...outcome.headers!, 'cache-control': 'no-store' })
          .send(outcome.body);
      },
      (err: Error) => done(err),
    );
  };
}

/**
 * A Fastify `preHandler` hook after `requireToken`: asks the authorizer whether the caller may do
 * `action` on the resource the request names; a deny answers 403 `access_denied`. The decision is
 * on `request.latchkeyDecision` (and in the audit log, when the authorizer has a queue).
 *
 * @example
 * ```ts
 * import { requirePermission, requireToken } from '@latchkey/sdk/fastify';
 * app.get('/orders/:id', {
 *   onRequest: requireToken({ verifier }),
 *   preHandler: requirePermission({ authorizer, action: 'Orders::Action::"read"', resource: (req) => ({ type: 'Orders::Order', id: req.params.id }) }),
 * }, handler);
 * ```
 */
export function requirePermission<Req extends FastifyRequestLike>(options: PermissionOptions<Req>) {
  return async (request: Req, reply: FastifyReplyLike): Promise<void> => {
    const outcome = await decidePermission(request, request.latchkey, options);
    if (outcome.result) request.latchkeyDecision = outcome.result;
    if (outcome.allowed) return;
    await reply.code(outcome.status!).headers({ 'cache-control': 'no-store' }).send(outcome.body);
  };
}
