import type { AccessTokenClaims } from '@latchkey/protocol';
import { authenticateBearer, type AuthOptions } from './bearer.ts';

/** The minimal Fastify request/reply surface used, so the SDK does not depend on Fastify. */
interface FastifyRequestLike {
  headers: Record<string, string | string[] | undefined>;
  latchkey?: AccessTokenClaims;
}
interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  headers(h: Record<string, string>): FastifyReplyLike;
  send(body: unknown): unknown;
}

/**
 * A Fastify `onRequest`/`preHandler` hook: verifies the Bearer token, sets `request.latchkey` to
 * the claims, or answers the RFC 6750 error.
 *
 * @example
 * ```ts
 * import { requireToken } from '@latchkey/sdk/fastify';
 * app.get('/orders', { onRequest: requireToken({ verifier, scope: 'orders:read' }) }, (req) => ({ caller: req.latchkey!.client_id }));
 * ```
 */
export function requireToken(options: AuthOptions) {
  return async (request: FastifyRequestLike, reply: FastifyReplyLike): Promise<void> => {
    const h = request.headers.authorization;
    const outcome = await authenticateBearer(Array.isArray(h) ? undefined : h, options);
    if (outcome.claims) {
      request.latchkey = outcome.claims;
      return;
    }
    await reply.code(outcome.status!).headers({ ...outcome.headers!, 'cache-control': 'no-store' }).send(outcome.body);
  };
}
