import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessTokenClaims } from '@latchkey/protocol';
import type { AuthorizeResult } from '../authorize/authorizer.ts';
import { authenticateBearer, peerCertificateOf, type AuthOptions } from './bearer.ts';
import { decidePermission, type PermissionOptions } from './permission.ts';

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
  const outcome = await authenticateBearer(req.headers.authorization, options, peerCertificateOf(req.socket));
  if (outcome.claims) return outcome.claims;
  res
    .writeHead(outcome.status!, { ...outcome.headers, 'content-type': 'application/json', 'cache-control': 'no-store' })
    .end(JSON.stringify(outcome.body));
  return undefined;
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
  const outcome = await decidePermission(req, claims, options);
  if (outcome.allowed) return outcome.result;
  res
    .writeHead(outcome.status!, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    .end(JSON.stringify(outcome.body));
  return undefined;
}
