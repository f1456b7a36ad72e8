/**
 * OpenTelemetry for the processes the CLI runs (`latchkey serve`, `latchkey sidecar`): off by
 * default, on with the standard environment — `OTEL_TRACES_EXPORTER=otlp` (or `console`), or an
 * OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`);
 * `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keep it off. The SDK's own packages
 * read the rest of the standard variables: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
 * `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_*` (headers, timeout,
 * certificates, compression). Export is OTLP over HTTP with JSON (port 4318's `/v1/traces`).
 * W3C Trace Context (`traceparent`) is extracted from requests and injected into outgoing calls.
 */

export interface Telemetry {
  /** Flushes what is buffered and stops exporting. */
  shutdown(): Promise<void>;
}

/** Whether the environment asks for traces. */
export function tracesWanted(env: NodeJS.ProcessEnv): 'otlp' | 'console' | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((x) => x.trim().toLowerCase())
    .filter(Boolean);
  if (exporters.includes('none')) return undefined;
  if (exporters.includes('console')) return 'console';
  if (exporters.includes('otlp')) return 'otlp';
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return 'otlp';
  return undefined;
}

/**
 * Registers a tracer provider (AsyncLocalStorage context, W3C propagators) when the environment
 * asks for traces; the SDK is loaded only then. `serviceName` applies unless `OTEL_SERVICE_NAME`
 * names one.
 */
export async function startTelemetry(env: NodeJS.ProcessEnv, serviceName: string): Promise<Telemetry | undefined> {
  const wanted = tracesWanted(env);
  if (!wanted) return undefined;
  const [{ NodeTracerProvider, BatchSpanProcessor, ConsoleSpanExporter }, { OTLPTraceExporter }, resources] =
    await Promise.all([
      import('@opentelemetry/sdk-trace-node'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
    ]);
  // Defaults first, then the environment's (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) on top.
  const resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ 'service.name': serviceName }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [
      new BatchSpanProcessor(wanted === 'console' ? new ConsoleSpanExporter() : new OTLPTraceExporter()),
    ],
  });
  provider.register();
  return { shutdown: () => provider.shutdown() };
}
