import type { FastifyInstance } from 'fastify';
import type { SidecarMetrics } from './sidecar_metrics.ts';

/** What /readyz reports: ready only while keys, revocations and policies are fresh enough to decide. */
export interface Readiness {
  ready: boolean;
  checks: Record<string, unknown>;
}

/** /healthz (the process answers), /readyz (it can decide), /metrics (Prometheus text). */
export function opsRoutes(app: FastifyInstance, deps: { readiness: () => Readiness; metrics: SidecarMetrics }): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const r = deps.readiness();
    return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not_ready', ...r.checks });
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
}
