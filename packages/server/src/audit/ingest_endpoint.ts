import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { Compile } from 'typebox/compile';
import { REPORTABLE_EVENT_TYPES } from '@latchkey/protocol';
import { OAuthError } from '../errors.ts';
import type { ServerEvents } from '../events.ts';

const Short = (max: number) => Type.String({ minLength: 1, maxLength: max });
const ReportedEventSchema = Type.Object(
  {
    type: Type.Union(REPORTABLE_EVENT_TYPES.map((t) => Type.Literal(t))),
    outcome: Type.Union([Type.Literal('success'), Type.Literal('failure')]),
    actor: Short(256),
    subject: Type.Optional(Short(256)),
    target: Type.Optional(Short(512)),
    reason: Type.Optional(Short(512)),
    request_id: Type.Optional(Short(128)),
    source_ip: Type.Optional(Short(64)),
    time: Type.Optional(Type.String({ pattern: '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z$' })),
    detail: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown())),
  },
  { additionalProperties: false },
);
const BatchSchema = Type.Object(
  {
    events: Type.Array(ReportedEventSchema, { minItems: 0, maxItems: 500 }),
    /** Events the service's queue dropped since its previous batch (it was full). */
    dropped: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000 })),
  },
  { additionalProperties: false },
);
const checkBatch = Compile(BatchSchema);

export interface IngestDeps {
  caller: (request: FastifyRequest) => Promise<string>;
  events: Pick<ServerEvents, 'emit'>;
  /** Cap on one batch's body (bytes). */
  bodyLimit: number;
  /** A service reported events its queue had to drop. */
  onDropped: (clientId: string, count: number) => void;
}

/**
 * POST /audit/events: batches of events (permission decisions) from authenticated services. The
 * reporting client is the one that authenticated — never taken from the body — and the event's
 * time is when the IdP received it (the service's own time is kept as `detail.reported_time`).
 */
export function registerAuditIngest(app: FastifyInstance, deps: IngestDeps): void {
  app.post('/audit/events', { bodyLimit: deps.bodyLimit }, async (request, reply) => {
    const service = await deps.caller(request);
    if (!/^application\/json\s*(;|$)/i.test(String(request.headers['content-type'] ?? ''))) {
      throw new OAuthError('invalid_request', 'the request body must be application/json', 415);
    }
    const body = request.body;
    if (!checkBatch.Check(body)) {
      const first = [...checkBatch.Errors(body)][0];
      throw new OAuthError('invalid_request', `${first?.instancePath || 'body'}: ${first?.message ?? 'invalid'}`);
    }
    for (const e of body.events) {
      if (e.detail !== undefined && JSON.stringify(e.detail).length > 4096)
        throw new OAuthError('invalid_request', 'detail must serialize to at most 4096 bytes');
    }
    if (body.events.length === 0 && !body.dropped)
      throw new OAuthError('invalid_request', 'events: must have at least 1 event (or a dropped count)');
    if (body.dropped) deps.onDropped(service, body.dropped);
    // 202 only once the batch is committed: the SDK drops what the IdP accepted.
    await Promise.all(
      body.events.map((e) =>
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
    );
    return reply.code(202).send({ accepted: body.events.length });
  });
}
