import {
  context,
  propagation,
  ProxyTracerProvider,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

/**
 * The SDK's tracer, through `@opentelemetry/api` alone: spans are recorded when the service
 * registered an OpenTelemetry SDK, and cost next to nothing otherwise. Spans: `latchkey.verify`,
 * `latchkey.authorize`, `latchkey.token_client.request` (a call to the IdP's token endpoint).
 */
export const tracer = trace.getTracer('@latchkey/sdk');

/** What the global provider delegates to while no OpenTelemetry SDK is registered. */
const NOOP = new ProxyTracerProvider().getDelegate();
let calls = 0;
let on = false;

/**
 * Whether a tracer provider is registered, looked up once every 256 calls: a cached verification
 * takes a few hundred nanoseconds, and even a no-op span would add a tenth to it. A provider
 * registered while the service runs is seen within 256 calls.
 */
export function tracing(): boolean {
  if ((calls++ & 255) === 0) {
    const p = trace.getTracerProvider();
    on = (p instanceof ProxyTracerProvider ? p.getDelegate() : p) !== NOOP;
  }
  return on;
}

/** Adds the active trace context (`traceparent`, `tracestate`: W3C Trace Context) to outgoing headers. */
export function injectTraceContext(headers: Headers | Record<string, string>): void {
  propagation.inject(context.active(), headers, {
    set: (carrier, key, value) => {
      if (carrier instanceof Headers) carrier.set(key, value);
      else carrier[key] = value;
    },
  });
}

/** Marks a span failed with a stable error code (never the message, which may quote input). */
export function failSpan(span: Span, err: unknown): void {
  const code = (err as { code?: unknown }).code;
  span.setStatus({ code: SpanStatusCode.ERROR, ...(typeof code === 'string' ? { message: code } : {}) });
  span.setAttribute('error.type', typeof code === 'string' ? code : ((err as Error).name ?? 'Error'));
}

/** Runs `body` in a client span (a call to the IdP), its context active so the call carries it. */
export async function inClientSpan<T>(name: string, attributes: Record<string, string>, body: () => Promise<T>) {
  const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes });
  try {
    return await context.with(trace.setSpan(context.active(), span), body);
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}
