import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalidRequest } from '../errors.ts';
import type { AlertStore } from '../storage/ports.ts';

export interface AlertAdminDeps {
  alerts: Pick<AlertStore, 'listAlerts'>;
  requireAdmin: (request: FastifyRequest) => Promise<void>;
}

/** GET /admin/alerts: stored alerts, oldest first from a cursor (`after`), optionally one detector's. */
export function registerAlertAdmin(app: FastifyInstance, deps: AlertAdminDeps): void {
  app.get('/admin/alerts', async (request) => {
    await deps.requireAdmin(request);
    const q = request.query as Record<string, unknown>;
    const num = (k: 'after' | 'limit', fallback: number): number => {
      const v = q[k];
      if (v === undefined) return fallback;
      if (typeof v !== 'string' || !/^\d{1,15}$/.test(v))
        throw invalidRequest(`${k} must be given once, a non-negative integer`);
      return Number(v);
    };
    const after = num('after', 0);
    const limit = num('limit', 100);
    if (limit < 1 || limit > 1000) throw invalidRequest('limit must be from 1 to 1000');
    const detector = q.detector;
    if (detector !== undefined && (typeof detector !== 'string' || !/^[a-z_]{1,64}$/.test(detector)))
      throw invalidRequest('detector must be given once, a detector name');
    const rows = await deps.alerts.listAlerts({
      after,
      limit: limit + 1,
      ...(detector !== undefined ? { detector } : {}),
    });
    const alerts = rows.slice(0, limit);
    return {
      alerts,
      cursor: String(alerts.length > 0 ? alerts[alerts.length - 1]!.id : after),
      has_more: rows.length > limit,
    };
  });
}
