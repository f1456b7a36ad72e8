import { gzipSync } from 'node:zlib';
import { type Clock, epochSeconds, STATUS_LIST_MEDIA_TYPE } from '@latchkey/protocol';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { OAuthError } from '../errors.ts';
import { DecimalString, oauthErrors, typed } from '../http/schemas.ts';
import { STATUS_LIST_PATH, type StatusLists } from './status_lists.ts';

/**
 * Bodies this large and up are sent gzip-encoded to a client that accepts it (§8.2: SHOULD): the
 * base64url text of a JWS shrinks by about a quarter, more than gzip's 20 bytes of framing.
 */
const GZIP_FROM = 256;

/** Whether an Accept header admits the Status List Token media type (RFC 9110 §12.5.1; absent admits anything). */
function acceptsStatusList(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return true;
  return accept.split(',').some((part) => {
    const [range, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) return false;
    return range === STATUS_LIST_MEDIA_TYPE || range === 'application/*' || range === '*/*';
  });
}

const acceptsGzip = (header: string | undefined): boolean =>
  (header ?? '').split(',').some((p) => {
    const [coding, q] = p.trim().toLowerCase().split(';');
    return coding === 'gzip' && q?.trim() !== 'q=0';
  });

/**
 * draft-ietf-oauth-status-list §8: `GET /sl/{list}` answers the signed Status List Token the
 * tokens' `status.status_list.uri` names (`application/statuslist+jwt`, cacheable, CORS open:
 * it is public and names no one), and `GET /sl` the Status List Aggregation (§9.3).
 */
export function registerStatusListEndpoints(app: FastifyInstance, deps: { lists: StatusLists; clock: Clock }): void {
  app.get<{ Params: { list: string }; Querystring: { time?: string } }>(
    `${STATUS_LIST_PATH}/:list`,
    {
      config: { credential: 'none' },
      schema: {
        tags: ['discovery'],
        summary: "Token Status List: the signed status list a token's status.status_list.uri names",
        params: Type.Object({ list: DecimalString('the list number', 12) }),
        querystring: Type.Object({ time: Type.Optional(Type.String({ maxLength: 20 })) }),
        response: {
          200: {
            description: 'a Status List Token (JWS compact serialization)',
            content: { [STATUS_LIST_MEDIA_TYPE]: { schema: Type.String() } },
          },
          304: Type.Null({ description: 'If-None-Match matched the ETag' }),
          ...oauthErrors(400, 404, 406, 501),
        },
      },
    },
    async (request, reply) => {
      reply.header('access-control-allow-origin', '*').header('vary', 'Accept, Accept-Encoding');
      // §8.4: historical resolution is optional; a server without it answers 501.
      if (request.query.time !== undefined)
        throw new OAuthError('invalid_request', 'historical resolution (time) is not supported', 501);
      if (!acceptsStatusList(request.headers.accept))
        throw new OAuthError('invalid_request', `this resource is available as ${STATUS_LIST_MEDIA_TYPE} only`, 406);
      const list = await deps.lists.token(Number(request.params.list));
      if (!list) throw new OAuthError('invalid_request', 'no such status list (or every token in it has expired)', 404);
      // §8.2: the token's ttl and exp decide caching; HTTP caches (CDNs) keep it no longer than the ttl left.
      const age = Math.max(0, epochSeconds(deps.clock) - list.iat);
      reply.header('cache-control', `public, max-age=${Math.max(0, list.ttl - age)}`).header('etag', list.etag);
      const inm = request.headers['if-none-match'];
      if (inm?.split(',').some((t) => t.trim() === list.etag || t.trim() === '*')) return reply.code(304).send();
      reply.type(STATUS_LIST_MEDIA_TYPE);
      if (list.jws.length >= GZIP_FROM && acceptsGzip(request.headers['accept-encoding']))
        return reply.header('content-encoding', 'gzip').send(gzipSync(list.jws));
      return reply.send(list.jws);
    },
  );
  typed(app).get(
    STATUS_LIST_PATH,
    {
      config: { credential: 'none' },
      schema: {
        tags: ['discovery'],
        summary: 'Token Status List aggregation: the URIs of every list that may still cover a valid token',
        response: { 200: Type.Object({ status_lists: Type.Array(Type.String()) }) },
      },
    },
    async (_request, reply) => {
      reply.header('access-control-allow-origin', '*').header('cache-control', 'public, max-age=60');
      return { status_lists: await deps.lists.live() };
    },
  );
}
