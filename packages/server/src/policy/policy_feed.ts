import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { AnyObject, oauthErrors } from '../http/schemas.ts';
import type { PolicyBundle } from '@latchkey/protocol';
import { OAuthError } from '../errors.ts';
import type { ClientStore, PolicyStore } from '../storage/ports.ts';
import { sliceBundle } from './policy_slice.ts';

export interface PolicyFeedDeps {
  store: Pick<PolicyStore, 'getPolicyVersion' | 'listPolicyVersions'>;
  clients: Pick<ClientStore, 'getClient'>;
}

/**
 * GET /feeds/policy: the active bundle for services — only their `policy_namespaces` when their
 * registration names some — with its digest as a strong ETag, so a service polls cheaply (304)
 * and fetches only when a `policy` event on the stream says so.
 */
const noPolicy = () => new OAuthError('invalid_request', 'no policy has been published yet', 404);

export function registerPolicyFeed(app: FastifyInstance, deps: PolicyFeedDeps): void {
  // Slices per (version, namespaces): computed once, shared by every replica's callers.
  const slices = new Map<string, PolicyBundle>();
  // The active bundle, kept while it stays the newest: a poll costs one small query, not a bundle load.
  let cached: PolicyBundle | undefined;
  app.get(
    '/feeds/policy',
    {
      schema: {
        tags: ['feeds'],
        summary:
          "the active policy bundle (only the client's policy_namespaces when it names some), with a strong ETag",
        response: {
          200: Type.Object({
            version: Type.Integer(),
            digest: Type.String(),
            publishedAt: Type.String(),
            schema: Type.Record(Type.String(), Type.String()),
            policies: Type.Record(Type.String(), Type.String()),
            entities: Type.Array(AnyObject),
          }),
          304: Type.Null({ description: 'If-None-Match matched the ETag' }),
          ...oauthErrors(401, 403, 404, 503),
        },
      },
    },
    async (request, reply) => {
      const clientId = request.serviceClientId;
      const newest = (await deps.store.listPolicyVersions(1))[0];
      if (!newest) throw noPolicy();
      if (cached?.version !== newest.version) cached = await deps.store.getPolicyVersion(newest.version);
      const full = cached;
      if (!full) throw noPolicy();
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
      if (inm?.split(',').some((t) => t.trim() === etag)) return reply.code(304).send();
      const bundle: PolicyBundle = {
        version: active.version,
        digest: active.digest,
        publishedAt: active.publishedAt,
        schema: active.schema,
        policies: active.policies,
        entities: active.entities,
      };
      return bundle;
    },
  );
}
