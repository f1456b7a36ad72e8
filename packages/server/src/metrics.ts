import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { adminErrors } from './http/schemas.ts';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditEventType, AuditOutcome } from '@latchkey/protocol';

/** The IdP's Prometheus metrics, on a registry of its own (several IdPs can share a process in tests). */
export class Metrics {
  readonly registry = new Registry();
  /** Every audit event by type and outcome: tokens issued, failed authentications, alerts, decisions... */
  readonly events = new Counter({
    name: 'latchkey_events_total',
    help: 'Audited events by type and outcome',
    labelNames: ['type', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly auditWriteFailures = new Counter({
    name: 'latchkey_audit_write_failures_total',
    help: 'Audit batches that could not be committed (their requests failed with 503)',
    registers: [this.registry],
  });
  readonly reportedDropped = new Counter({
    name: 'latchkey_audit_reported_dropped_total',
    help: "Events that services' SDK audit queues dropped because the queue was full, as the services reported them",
    labelNames: ['client_id'] as const,
    registers: [this.registry],
  });
  readonly auditPending = new Gauge({
    name: 'latchkey_audit_pending_events',
    help: 'Audit events waiting for their transaction',
    registers: [this.registry],
  });
  readonly feedStreams = new Gauge({
    name: 'latchkey_feed_streams',
    help: 'Open feed streams on this replica',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'latchkey_' });
  }

  countEvent(type: AuditEventType, outcome: AuditOutcome): void {
    this.events.inc({ type, outcome });
  }
}

/** GET /metrics in the Prometheus text format, for the admin bearer (client ids are in the labels). */
export function registerMetricsEndpoint(app: FastifyInstance, deps: { metrics: Metrics; sample: () => void }): void {
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics (admin bearer)',
        response: { 200: { content: { 'text/plain': { schema: Type.String() } } }, ...adminErrors() },
      },
    },
    async (_request, reply) => {
      deps.sample();
      return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
    },
  );
}
