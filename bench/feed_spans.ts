// The IdP's `latchkey.feed.deliver` spans, recorded in the benchmark's IdP child through a real
// OpenTelemetry SDK: when the hub finished handing a page of entries to every open stream.
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

const deliveries: { start: number; end: number; streams: number }[] = [];
const ms = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;

export function recordFeedDeliveries(): void {
  const processor: SpanProcessor = {
    onStart: () => {},
    onEnd: (span: ReadableSpan) => {
      if (span.name === 'latchkey.feed.deliver')
        deliveries.push({
          start: ms(span.startTime),
          end: ms(span.endTime),
          streams: Number(span.attributes['latchkey.feed.streams'] ?? 0),
        });
    },
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [processor] }));
  process.on('message', (m: { kind: string }) => {
    if (m.kind === 'feedSpans') process.send?.({ kind: 'feedSpans', deliveries: deliveries.splice(0) });
  });
}
