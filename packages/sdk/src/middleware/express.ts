import type { AccessTokenClaims } from '@latchkey/protocol';
import { authenticateBearer, type AuthOptions } from './bearer.ts';

interface ExpressRequestLike {
  headers: Record<string, string | string[] | undefined>;
  latchkey?: AccessTokenClaims;
}
interface ExpressResponseLike {
  status(code: number): ExpressResponseLike;
  set(headers: Record<string, string>): ExpressResponseLike;
  json(body: unknown): unknown;
}

/**
 * Express middleware: verifies the Bearer token, sets `req.latchkey` to the claims, or answers
 * the RFC 6750 error.
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
    authenticateBearer(Array.isArray(h) ? undefined : h, options).then((outcome) => {
      if (outcome.claims) {
        req.latchkey = outcome.claims;
        next();
        return;
      }
      res.status(outcome.status!).set({ ...outcome.headers!, 'cache-control': 'no-store' }).json(outcome.body);
    }, next);
  };
}
