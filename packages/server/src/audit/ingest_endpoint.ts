import type { FastifyInstance } from 'fastify';
import Type, { type Static } from 'typebox';
import { oauthErrors, typed } from '../http/schemas.ts';
import type { ReportableEventType } from '@latchkey/protocol';
import { AUDIT_EVENT_DETAILS } from '@latchkey/protocol/audit-details';
import { OAuthError } from '../errors.ts';
import type { ServerEvents } from '../events.ts';

const Short = (max: number) => Type.String({ minLength: 1, maxLength: max });
/**
 * One reported event of type `type`: its detail is the event map's (`AUDIT_EVENT_DETAILS`) less
 * what the IdP adds itself (the reporting service, the target, the service's time); a service
 * may add details of its own.
 */
const reported = <T extends ReportableEventType>(type: T) =>
  Type.Object(
    {
      type: Type.Literal(type),
      outcome: Type.Enum(['success', 'failure']),
      actor: Short(256),
      subject: Type.Optional(Short(256)),
      target: Type.Optional(Short(512)),
      reason: Type.Optional(Short(512)),
      request_id: Type.Optional(Short(128)),
      source_ip: Type.Optional(Short(64)),
      time: Type.Optional(Type.String({ pattern: '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z$' })),
      detail: Type.Optional(Type.Omit(AUDIT_EVENT_DETAILS[type], ['service', 'target', 'reported_time'])),
    },
    { additionalProperties: false },
  );
const ReportedEventSchema = Type.Union([
  reported('authz.decision'),
  reported('authz.decisions'),
  reported('token.rejected'),
]);
// Every reportable type has its schema above: a new one that does not fails to compile.
const covered: [Exclude<ReportableEventType, Static<typeof ReportedEventSchema>['type']>] extends [never]
  ? true
  : never = true;
void covered;
const BatchSchema = Type.Object(
  {
    events: Type.Array(ReportedEventSchema, { minItems: 0, maxItems: 500 }),
    /** Events the service's queue dropped since its previous batch (it was full). */
    dropped: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000 })),
  },
  { additionalProperties: false },
);

export interface IngestDeps {
  events: Pick<ServerEvents, 'emit'>;
  /** Cap on one batch's body (bytes). */
  bodyLimit: number;
  /** A service reported events its queue had to drop (after its gap is in the trail). */
  onDropped: (clientId: string, count: number) => void;
}

/**
 * POST /audit/events: batches of events (permission decisions, individual or counted per interval)
 * from authenticated services, and the count of events a service had to discard (an `audit.gap`
 * event). The
 * reporting client is the one that authenticated — never taken from the body — and the event's
 * time is when the IdP received it (the service's own time is kept as `detail.reported_time`).
 */
export function registerAuditIngest(app: FastifyInstance, deps: IngestDeps): void {
  typed(app).post(
    '/audit/events',
    {
      bodyLimit: deps.bodyLimit,
      schema: {
        tags: ['audit'],
        summary: "a service's batch of events (permission decisions, rejected tokens) for the audit trail",
        body: BatchSchema,
        response: { 202: Type.Object({ accepted: Type.Integer() }), ...oauthErrors(400, 401, 403, 413, 415, 503) },
      },
    },
    async (request, reply) => {
      const service = request.serviceClientId;
      const body = request.body;
      for (const e of body.events) {
        if (e.detail !== undefined && JSON.stringify(e.detail).length > 4096)
          throw new OAuthError('invalid_request', 'detail must serialize to at most 4096 bytes');
      }
      if (body.events.length === 0 && !body.dropped)
        throw new OAuthError('invalid_request', 'events: must have at least 1 event (or a dropped count)');
      // 202 only once the batch is committed: the SDK drops what the IdP accepted. What the service
      // could not keep is a counted gap in the chain, beside the events that did arrive.
      await Promise.all([
        ...(body.dropped
          ? [
              deps.events.emit('audit.gap', {
                actor: service,
                outcome: 'failure',
                client_id: service,
                reason: 'queue_full',
                detail: { service, count: body.dropped },
              }),
            ]
          : []),
        ...body.events.map((e) =>
          deps.events.emit(e.type, {
            actor: e.actor,
            outcome: e.outcome,
            client_id: service,
            ...(e.subject !== undefined ? { subject: e.subject } : {}),
            ...(e.reason !== undefined ? { reason: e.reason } : {}),
            ...(e.request_id !== undefined ? { request_id: e.request_id } : {}),
            ...(e.source_ip !== undefined ? { source_ip: e.source_ip } : {}),
            detail: {
              ...(e.detail ?? {}),
              service,
              ...(e.target !== undefined ? { target: e.target } : {}),
              ...(e.time !== undefined ? { reported_time: e.time } : {}),
            },
          }),
        ),
      ]);
      if (body.dropped) deps.onDropped(service, body.dropped);
      return reply.code(202).send({ accepted: body.events.length });
    },
  );
}
