import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { Open } from '../http/schemas.ts';
import type { KeyRing } from './key_ring.ts';

/** GET /jwks: public keys only, with Cache-Control and a strong ETag (RFC 9110 §13.1.2). */
export function registerJwksEndpoint(
  app: FastifyInstance,
  deps: { keys: Pick<KeyRing, 'jwks'>; maxAge: number },
): void {
  app.get(
    '/jwks',
    {
      config: { credential: 'none' },
      schema: {
        tags: ['discovery'],
        summary: 'RFC 7517 JSON Web Key Set of the signing keys (next, current, retired)',
        response: {
          200: {
            content: {
              'application/jwk-set+json': {
                schema: Type.Object({ keys: Type.Array(Open({ kty: Type.String(), kid: Type.String() })) }),
              },
            },
          },
          304: Type.Null({ description: 'If-None-Match matched the ETag' }),
        },
      },
    },
    async (request, reply) => {
      const { body, etag } = deps.keys.jwks();
      reply.header('cache-control', `public, max-age=${deps.maxAge}`).header('etag', etag);
      const inm = request.headers['if-none-match'];
      if (inm?.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
        return reply.code(304).send();
      }
      return reply.type('application/jwk-set+json').send(body);
    },
  );
}
