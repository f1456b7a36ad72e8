import { propagation, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { tracer } from '../tracing.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's server span (a non-recording one while no OpenTelemetry SDK is registered). */
    traceSpan?: Span;
  }
}

/**
 * A server span per request (OpenTelemetry's HTTP semantic conventions), continuing the caller's
 * trace from its `traceparent` header (W3C Trace Context); its trace and span ids join the
 * request's log lines. Never records a query string, header values or a body: they may carry
 * tokens and secrets.
 */
export function registerRequestTracing(app: FastifyInstance): void {
  // Callback hooks: no promise per request while tracing is off.
  app.addHook('onRequest', (request, _reply, done) => {
    const parent = propagation.extract(ROOT_CONTEXT, request.headers);
    const span = tracer.startSpan('HTTP', { kind: SpanKind.SERVER }, parent);
    request.traceSpan = span;
    // Name, attributes and the log binding only for a recorded span: nothing is built per request
    // while tracing is off (the token endpoint is a hot path).
    if (span.isRecording()) {
      const route = request.routeOptions.url ?? 'unmatched';
      span.updateName(`${request.method} ${route}`);
      span.setAttributes({
        'http.request.method': request.method,
        'http.route': route,
        'url.path': request.url.split('?', 1)[0]!,
        'client.address': request.ip,
        'latchkey.request_id': request.id,
      });
      const { traceId, spanId } = span.spanContext();
      request.log = request.log.child({ trace_id: traceId, span_id: spanId });
    }
    done();
  });
  const end = (request: FastifyRequest, status: number | undefined) => {
    const span = request.traceSpan;
    if (!span) return;
    request.traceSpan = undefined;
    if (status !== undefined) span.setAttribute('http.response.status_code', status);
    if (status === undefined || status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  };
  app.addHook('onResponse', (request, reply, done) => {
    end(request, reply.statusCode);
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    end(request, undefined);
    done();
  });
}
