import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessTokenClaims } from '@latchkey/protocol';
import { authenticateBearer, type AuthOptions } from './bearer.ts';

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
export async function authenticate(req: IncomingMessage, res: ServerResponse, options: AuthOptions): Promise<AccessTokenClaims | undefined> {
  const outcome = await authenticateBearer(req.headers.authorization, options);
  if (outcome.claims) return outcome.claims;
  res.writeHead(outcome.status!, { ...outcome.headers, 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(outcome.body));
  return undefined;
}
