import type { IncomingHttpHeaders } from 'node:http';
import { Transform } from 'node:stream';
import httpProxy from '@fastify/http-proxy';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SidecarConfig } from '../config/sidecar_config_schema.ts';
import type { Gate, GateOutcome } from '../gate/gate.ts';
import { isIdentityHeader } from '../gate/identity_headers.ts';
import type { SidecarMetrics } from '../ops/sidecar_metrics.ts';
import { factsOf } from './request_of.ts';

type ProxyConfig = NonNullable<SidecarConfig['proxy']>;

declare module 'fastify' {
  interface FastifyRequest {
    latchkeyIdentity?: Record<string, string>;
  }
}

/** A body larger than the limit: 413 (RFC 9110 §15.5.14), whether announced by Content-Length or streamed. */
class BodyTooLarge extends Error {
  readonly statusCode = 413;
  readonly code = 'FST_ERR_CTP_BODY_TOO_LARGE';
  constructor() {
    super('request body is too large');
  }
}

/** Counts a streamed body through, failing it past the limit (it is never buffered). */
function limited(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      done(seen > limit ? new BodyTooLarge() : null, chunk);
    },
  });
}

/** What the upstream is sent: the request's headers without any identity header from outside, plus the sidecar's. */
export function upstreamHeaders(
  headers: IncomingHttpHeaders,
  identity: Record<string, string>,
  options: { passAuthorization: boolean; forwarded: { for: string; proto: string; host: string | undefined } },
): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (isIdentityHeader(name)) continue;
    if (name === 'authorization' && !options.passAuthorization) continue;
    out[name] = value;
  }
  const prior = typeof headers['x-forwarded-for'] === 'string' ? `${headers['x-forwarded-for']}, ` : '';
  out['x-forwarded-for'] = `${prior}${options.forwarded.for}`;
  out['x-forwarded-proto'] = options.forwarded.proto;
  if (options.forwarded.host) out['x-forwarded-host'] = options.forwarded.host;
  return { ...out, ...identity };
}

const refuse = (reply: FastifyReply, outcome: Extract<GateOutcome, { allow: false }>) =>
  reply
    .code(outcome.status)
    .headers({ ...outcome.headers, 'cache-control': 'no-store' })
    .send(outcome.body);

/**
 * Reverse proxy mode: every request is checked by the gate before anything reaches the upstream;
 * allowed ones are forwarded (@fastify/http-proxy over undici: streamed bodies both ways,
 * keep-alive, hop-by-hop headers dropped, WebSocket upgrades — after the same check) with the
 * caller's identity in `X-Latchkey-*` headers, every such header from outside removed first.
 */
export async function reverseProxy(
  app: FastifyInstance,
  deps: { config: ProxyConfig; gate: Gate; metrics: SidecarMetrics; passAuthorization: boolean; now: () => number },
): Promise<void> {
  const { config, gate, metrics } = deps;
  // Bodies pass through as streams, counted against the limit; nothing is parsed or buffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload.pipe(limited(config.body_limit))));
  app.addHook('onRequest', async (request, reply) => {
    const length = Number(request.headers['content-length'] ?? 0);
    if (length > config.body_limit)
      return reply.code(413).send({ error: 'invalid_request', error_description: 'request body is too large' });
    const facts = factsOf(request.raw, deps.now());
    if (!facts) return reply.code(400).send({ error: 'invalid_request', error_description: 'ambiguous request path' });
    const outcome = await gate.check(facts.facts, facts.peerCertificate, 'proxy');
    if (!outcome.allow) return refuse(reply, outcome);
    request.latchkeyIdentity = outcome.identity;
  });
  const forwarded = (request: FastifyRequest) => ({
    for: request.raw.socket.remoteAddress ?? '',
    proto: request.protocol,
    host: request.headers.host,
  });
  await app.register(httpProxy, {
    upstream: config.upstream,
    websocket: config.websocket,
    proxyPayloads: false,
    undici: { headersTimeout: config.timeout * 1000, bodyTimeout: config.timeout * 1000 },
    replyOptions: {
      rewriteRequestHeaders: (request, headers) =>
        upstreamHeaders(headers, (request as FastifyRequest).latchkeyIdentity ?? {}, {
          passAuthorization: deps.passAuthorization,
          forwarded: forwarded(request as FastifyRequest),
        }),
      onError: (reply, { error }) => {
        if (error instanceof BodyTooLarge || (error as { cause?: unknown }).cause instanceof BodyTooLarge)
          return void reply
            .code(413)
            .send({ error: 'invalid_request', error_description: 'request body is too large' });
        metrics.upstreamErrors.inc();
        const timedOut = /timeout/i.test(String((error as { code?: string }).code ?? error.message));
        reply.code(timedOut ? 504 : 502).send({
          error: 'upstream_unavailable',
          error_description: timedOut ? 'the upstream timed out' : 'the upstream did not answer',
        });
      },
    },
    wsClientOptions: {
      rewriteRequestHeaders: (headers: Record<string, string>, request: FastifyRequest) => ({
        ...headers,
        ...(request.latchkeyIdentity ?? {}),
      }),
    },
  } as Parameters<typeof httpProxy>[1]);
}
