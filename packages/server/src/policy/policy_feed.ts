import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PolicyBundle } from '@latchkey/protocol';
import { OAuthError } from '../errors.ts';
import type { PolicyStore } from '../storage/ports.ts';

export interface PolicyFeedDeps {
  store: Pick<PolicyStore, 'getPolicyVersion'>;
  /** The authenticated client calling (Basic or its own access token). */
  caller: (request: FastifyRequest) => Promise<string>;
}

/**
 * GET /feeds/policy: the active bundle for services, with its digest as a strong ETag, so a
 * service polls cheaply (304) and fetches only when a `policy` event on the stream says so.
 */
export function registerPolicyFeed(app: FastifyInstance, deps: PolicyFeedDeps): void {
  app.get('/feeds/policy', async (request, reply) => {
    await deps.caller(request);
    const active = await deps.store.getPolicyVersion();
    if (!active) throw new OAuthError('invalid_request', 'no policy has been published yet', 404);
    const etag = `"${active.digest}"`;
    reply.header('etag', etag).header('cache-control', 'no-cache');
    const inm = request.headers['if-none-match'];
    if (inm !== undefined && inm.split(',').some((t) => t.trim() === etag)) return reply.code(304).send();
    const bundle: PolicyBundle = { version: active.version, digest: active.digest, publishedAt: active.publishedAt, schema: active.schema, policies: active.policies, entities: active.entities };
    return bundle;
  });
}
