import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { adminErrors } from './http/schemas.ts';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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
  /** Requests by route and status class: latency SLOs and error rates (docs/operations.md, Monitoring). */
  readonly requestSeconds = new Histogram({
    name: 'latchkey_http_request_duration_seconds',
    help: 'Time from the request to the last byte of the answer, by method, route and status class',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly feedLag = new Gauge({
    name: 'latchkey_feed_lag_entries',
    help: "Feed entries committed (by any replica) that this replica's open streams have not been sent yet",
    registers: [this.registry],
  });
  readonly notificationsConnected = new Gauge({
    name: 'latchkey_storage_notifications_connected',
    help: "1 while other replicas' feed entries are heard at once (PostgreSQL LISTEN; always 1 on SQLite)",
    registers: [this.registry],
  });
  readonly signingKeyAge = new Gauge({
    name: 'latchkey_signing_key_age_seconds',
    help: 'Seconds since the current signing key was activated: past the rotation interval, rotation is stuck',
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
export function registerMetricsEndpoint(
  app: FastifyInstance,
  deps: { metrics: Metrics; sample: () => Promise<void> },
): void {
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
      await deps.sample();
      return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
    },
  );
}
