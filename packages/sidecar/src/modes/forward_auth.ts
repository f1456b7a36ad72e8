import type { FastifyInstance } from 'fastify';
import type { Gate } from '../gate/gate.ts';
import { IDENTITY_HEADERS } from '../gate/identity_headers.ts';
import { headerValue, lastForwardedFor, type RequestFacts, splitTarget } from '../routes/request_facts.ts';

const EMPTY_IDENTITY = Object.fromEntries(IDENTITY_HEADERS.map((h) => [h, '']));

/**
 * The original request as the proxy in front describes it: nginx `auth_request` (X-Original-URI,
 * X-Original-Method, set in its configuration), Caddy `forward_auth` and Traefik `ForwardAuth`
 * (X-Forwarded-Method, X-Forwarded-Uri). The client address is the last X-Forwarded-For entry,
 * the one the proxy itself added; earlier entries come from the client and are not trusted.
 */
export function forwardedFacts(
  headers: RequestFacts['headers'],
  fallbackIp: string,
  now: number,
): RequestFacts | undefined {
  const uri = headerValue(headers, 'x-original-uri') ?? headerValue(headers, 'x-forwarded-uri');
  const method = headerValue(headers, 'x-original-method') ?? headerValue(headers, 'x-forwarded-method');
  if (!uri || !method || !/^[A-Z]{1,16}$/i.test(method)) return undefined;
  const target = splitTarget(uri);
  if (!target) return undefined;
  const xff = headerValue(headers, 'x-real-ip') ?? lastForwardedFor(headers);
  return {
    method: method.toUpperCase(),
    path: target.path,
    query: target.query,
    headers,
    sourceIp: xff || fallbackIp,
    now,
  };
}

/**
 * Forward auth: the proxy asks before it forwards. 200 with the identity headers (for the proxy to
 * copy onto the upstream request), or 401/403 with the RFC 6750 `WWW-Authenticate` and a JSON body,
 * which the proxy returns to the client. nginx's auth_request understands only 2xx, 401 and 403,
 * so a request the sidecar cannot read is a 403 here.
 */
export function forwardAuth(app: FastifyInstance, deps: { path: string; gate: Gate; now: () => number }): void {
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    url: deps.path,
    handler: async (request, reply) => {
      reply.header('cache-control', 'no-store');
      const facts = forwardedFacts(request.headers, request.ip, deps.now());
      if (!facts)
        return reply.code(403).send({
          error: 'invalid_request',
          error_description: 'the original method and URI are missing or ambiguous (X-Original-URI/X-Forwarded-Uri)',
        });
      const outcome = await deps.gate.check(facts, undefined, 'forward_auth');
      if (!outcome.allow)
        return reply
          .code(outcome.status === 400 ? 403 : outcome.status)
          .headers(outcome.headers)
          .send(outcome.body);
      // Every identity header, empty when absent: a proxy that copies them (Caddy's copy_headers)
      // then replaces whatever the client sent instead of keeping it or an unfilled placeholder.
      return reply
        .code(200)
        .headers({ ...EMPTY_IDENTITY, ...outcome.identity })
        .send();
    },
  });
}
