import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PolicyBundle } from '@latchkey/protocol';
import { OAuthError } from '../errors.ts';
import type { ClientStore, PolicyStore } from '../storage/ports.ts';
import { sliceBundle } from './policy_slice.ts';

export interface PolicyFeedDeps {
  store: Pick<PolicyStore, 'getPolicyVersion' | 'listPolicyVersions'>;
  clients: Pick<ClientStore, 'getClient'>;
  /** The authenticated client calling (Basic or its own access token). */
  caller: (request: FastifyRequest) => Promise<string>;
}

/**
 * GET /feeds/policy: the active bundle for services — only their `policy_namespaces` when their
 * registration names some — with its digest as a strong ETag, so a service polls cheaply (304)
 * and fetches only when a `policy` event on the stream says so.
 */
export function registerPolicyFeed(app: FastifyInstance, deps: PolicyFeedDeps): void {
  // Slices per (version, namespaces): computed once, shared by every replica's callers.
  const slices = new Map<string, PolicyBundle>();
  // The active bundle, kept while it stays the newest: a poll costs one small query, not a bundle load.
  let cached: PolicyBundle | undefined;
  app.get('/feeds/policy', async (request, reply) => {
    const clientId = await deps.caller(request);
    const newest = (await deps.store.listPolicyVersions(1))[0];
    if (!newest) throw new OAuthError('invalid_request', 'no policy has been published yet', 404);
    if (cached?.version !== newest.version) cached = await deps.store.getPolicyVersion(newest.version);
    const full = cached;
    if (!full) throw new OAuthError('invalid_request', 'no policy has been published yet', 404);
    const namespaces = (await deps.clients.getClient(clientId))?.metadata.policy_namespaces;
    let active: PolicyBundle = full;
    if (namespaces && namespaces.length > 0) {
      const key = `${full.version}|${[...namespaces].sort().join(',')}`;
      let s = slices.get(key);
      if (!s) {
        s = sliceBundle(full, namespaces);
        if (slices.size >= 100) slices.delete(slices.keys().next().value as string);
        slices.set(key, s);
      }
      active = s;
    }
    const etag = `"${active.digest}"`;
    reply.header('etag', etag).header('cache-control', 'no-cache');
    const inm = request.headers['if-none-match'];
    if (inm !== undefined && inm.split(',').some((t) => t.trim() === etag)) return reply.code(304).send();
    const bundle: PolicyBundle = {
      version: active.version,
      digest: active.digest,
      publishedAt: active.publishedAt,
      schema: active.schema,
      policies: active.policies,
      entities: active.entities,
    };
    return bundle;
  });
}
