import { type Attributes, context, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import type { FastifyRequest } from 'fastify';
import { SERVER_VERSION } from './version.ts';

/**
 * The IdP's tracer. Through `@opentelemetry/api` alone: spans are recorded only when the process
 * registered an SDK (`latchkey serve` does when the standard `OTEL_*` environment asks for it,
 * docs/operations.md); otherwise every call is a no-op.
 */
export const tracer = trace.getTracer('@latchkey/server', SERVER_VERSION);

/**
 * Runs `body` in a child span of the request's span (or of the active one): `name` such as
 * `latchkey.token`. The span ends when `body` settles; an exception marks it failed with the
 * error's class and code, never its message (which may quote input).
 */
export async function inSpan<T>(
  request: Pick<FastifyRequest, 'traceSpan'> | undefined,
  name: string,
  attributes: Attributes,
  body: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = request?.traceSpan ? trace.setSpan(context.active(), request.traceSpan) : context.active();
  const span = tracer.startSpan(name, { attributes }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => body(span));
  } catch (err) {
    const code = (err as { error?: unknown; code?: unknown }).error ?? (err as { code?: unknown }).code;
    span.setStatus({ code: SpanStatusCode.ERROR, ...(typeof code === 'string' ? { message: code } : {}) });
    span.setAttribute('error.type', typeof code === 'string' ? code : ((err as Error).name ?? 'Error'));
    throw err;
  } finally {
    span.end();
  }
}
