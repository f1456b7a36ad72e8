import { actorOf } from './admin_token.ts';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import type { Clock } from '@latchkey/protocol';
import { conflict, notFound, validationFailed } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import { adminErrors, AnyObject, DecimalString, Nullable, typed } from '../http/schemas.ts';
import type { AlertStore } from '../storage/ports.ts';

export interface AlertAdminDeps {
  clock: Clock;
  alerts: Pick<AlertStore, 'listAlerts' | 'getAlert' | 'acknowledgeAlert'>;
  events: ServerEvents;
}

const Alert = Type.Object({
  id: Type.Integer(),
  time: Type.String(),
  detector: Type.String(),
  severity: Type.Enum(['low', 'medium', 'high']),
  key: Type.String({ description: 'what it is about: client:orders, ip:10.0.0.7, actor:Service::"x"' }),
  summary: Type.String(),
  firstSeq: Type.Integer({ description: 'the first audit event it is based on' }),
  lastSeq: Type.Integer(),
  count: Type.Integer(),
  detail: AnyObject,
  response: Nullable(Type.String({ description: 'the response taken, e.g. locked client:orders until ...' })),
  acknowledgedAt: Nullable(Type.String({ description: 'when an operator acknowledged it; null while open' })),
  acknowledgedBy: Nullable(Type.String({ description: 'who: admin, or admin:<username> from the console' })),
});

/**
 * GET /admin/alerts: stored alerts, oldest first from a cursor (`after`), optionally one
 * detector's or only the open (or acknowledged) ones; POST /admin/alerts/{id}/acknowledge.
 */
export function registerAlertAdmin(scope: FastifyInstance, deps: AlertAdminDeps): void {
  const app = typed(scope);
  app.get(
    '/admin/alerts',
    {
      schema: {
        tags: ['admin: audit'],
        querystring: Type.Object(
          {
            after: Type.Optional(DecimalString('cursor: alerts after this id')),
            limit: Type.Optional(DecimalString('1 to 1000 (default 100)', 4)),
            detector: Type.Optional(Type.String({ pattern: '^[a-z_]{1,64}$', description: 'one detector only' })),
            state: Type.Optional(
              Type.Enum(['open', 'acknowledged'], { description: 'only open (not acknowledged) or acknowledged ones' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ alerts: Type.Array(Alert), cursor: Type.String(), has_more: Type.Boolean() }),
          ...adminErrors(400),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const after = Number(q.after ?? 0);
      const limit = Number(q.limit ?? 100);
      if (limit < 1 || limit > 1000) throw validationFailed('limit must be from 1 to 1000');
      const rows = await deps.alerts.listAlerts({
        after,
        limit: limit + 1,
        ...(q.detector !== undefined ? { detector: q.detector } : {}),
        ...(q.state !== undefined ? { state: q.state } : {}),
      });
      const alerts = rows.slice(0, limit);
      return {
        alerts,
        cursor: String(alerts.length > 0 ? alerts[alerts.length - 1]!.id : after),
        has_more: rows.length > limit,
      };
    },
  );

  app.post(
    '/admin/alerts/:id/acknowledge',
    {
      schema: {
        tags: ['admin: audit'],
        params: Type.Object({ id: DecimalString('the alert', 15) }),
        response: { 200: Alert, ...adminErrors(404, 409) },
      },
    },
    async (request) => {
      const id = Number(request.params.id);
      const alert = await deps.alerts.getAlert(id);
      if (!alert) throw notFound(`no alert ${id}`);
      const time = new Date(deps.clock.now()).toISOString();
      const event = deps.events.stage('alert.acknowledged', {
        actor: actorOf(request),
        outcome: 'success',
        request_id: request.id,
        source_ip: request.ip,
        detail: { alert_id: id, detector: alert.detector },
      });
      if (!(await deps.alerts.acknowledgeAlert(id, actorOf(request), time, [event])))
        throw conflict(`alert ${id} was acknowledged already (${alert.acknowledgedAt ?? 'just now'})`);
      deps.events.committed(event);
      return { ...alert, acknowledgedAt: time, acknowledgedBy: actorOf(request) };
    },
  );
}
