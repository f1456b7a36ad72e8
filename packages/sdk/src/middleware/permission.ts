import type { AccessTokenClaims } from '@latchkey/protocol';
import type { Authorizer, AuthorizeRequest, AuthorizeResult, EntityRef } from '../authorize/authorizer.ts';
import { type CurrentTransaction, currentTransaction } from '../txn/transaction_context.ts';

/**
 * What `requirePermission` needs: the authorizer, the action, and how to find the resource (and
 * optionally the context) from the request. The request must already carry verified claims
 * (`requireToken` first).
 *
 * @example
 * ```ts
 * const read: PermissionOptions<Req> = { authorizer, action: 'Orders::Action::"read"', resource: (req) => ({ type: 'Orders::Order', id: req.params.id, attrs: await loadOrderAttrs(req.params.id) }) };
 * ```
 */
export interface PermissionOptions<Req> {
  authorizer: Pick<Authorizer, 'authorize'>;
  action: EntityRef;
  resource: (request: Req) => AuthorizeRequest['resource'] | Promise<AuthorizeRequest['resource']>;
  context?: (request: Req) => Record<string, unknown> | Promise<Record<string, unknown>>;
}

/**
 * The decision for one request, and what to answer when it is a deny: 403 with
 * `{"error": "access_denied"}` (the deciding policy ids stay in the audit log, not the answer).
 *
 * @example
 * ```ts
 * const outcome = await decidePermission(req, claims, { authorizer, action: 'Orders::Action::"read"', resource: () => order });
 * if (!outcome.allowed) return respond(outcome.status, outcome.body);
 * ```
 */
export async function decidePermission<Req>(
  request: Req,
  claims: AccessTokenClaims | undefined,
  options: PermissionOptions<Req>,
  /** The request's verified Transaction Token; default: `request.latchkeyTransaction`, or the current one. */
  transaction?: CurrentTransaction,
): Promise<{
  allowed: boolean;
  result?: AuthorizeResult;
  status?: 401 | 403 | 500;
  body?: { error: string; error_description: string };
}> {
  if (!claims)
    return {
      allowed: false,
      status: 401,
      body: {
        error: 'invalid_token',
        error_description: 'a verified bearer token is required before a permission check',
      },
    };
  let resource: AuthorizeRequest['resource'];
  let context: Record<string, unknown> | undefined;
  try {
    resource = await options.resource(request);
    context = options.context ? await options.context(request) : undefined;
  } catch {
    return {
      allowed: false,
      status: 500,
      body: { error: 'server_error', error_description: 'the resource for the permission check could not be resolved' },
    };
  }
  const txn =
    transaction ??
    (request as { latchkeyTransaction?: CurrentTransaction }).latchkeyTransaction ??
    currentTransaction();
  const result = options.authorizer.authorize({
    principal: claims,
    action: options.action,
    resource,
    ...(context ? { context } : {}),
    ...(txn ? { transaction: txn.claims } : {}),
  });
  if (result.decision === 'allow') return { allowed: true, result };
  return {
    allowed: false,
    result,
    status: 403,
    body: { error: 'access_denied', error_description: 'the request is not permitted' },
  };
}
