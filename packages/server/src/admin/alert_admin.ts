import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { validationFailed } from '../errors.ts';
import { adminErrors, AnyObject, DecimalString, Nullable, typed } from '../http/schemas.ts';
import type { AlertStore } from '../storage/ports.ts';

export interface AlertAdminDeps {
  alerts: Pick<AlertStore, 'listAlerts'>;
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
});

/** GET /admin/alerts: stored alerts, oldest first from a cursor (`after`), optionally one detector's. */
export function registerAlertAdmin(scope: FastifyInstance, deps: AlertAdminDeps): void {
  typed(scope).get(
    '/admin/alerts',
    {
      schema: {
        tags: ['admin: audit'],
        querystring: Type.Object(
          {
            after: Type.Optional(DecimalString('cursor: alerts after this id')),
            limit: Type.Optional(DecimalString('1 to 1000 (default 100)', 4)),
            detector: Type.Optional(Type.String({ pattern: '^[a-z_]{1,64}$', description: 'one detector only' })),
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
      });
      const alerts = rows.slice(0, limit);
      return {
        alerts,
        cursor: String(alerts.length > 0 ? alerts[alerts.length - 1]!.id : after),
        has_more: rows.length > limit,
      };
    },
  );
}
