import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LatchkeyError, OAuthError } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import type { CaState, WorkloadCa } from '../ca/workload_ca.ts';

export interface CaAdminDeps {
  ca: WorkloadCa;
  events: ServerEvents;
  /** Default announce period of a new root: the workload certificate lifetime. */
  defaultAnnounce: number;
  requireAdmin: (request: FastifyRequest) => Promise<void>;
}

const view = (s: CaState) => ({ operator_managed: s.operatorManaged, roots: s.roots, bundle: s.bundlePem });

/** Admin API over the workload CA: `GET /admin/ca` (roots and their states), `POST /admin/ca/rotate`. */
export function registerCaAdmin(app: FastifyInstance, deps: CaAdminDeps): void {
  app.get('/admin/ca', async (request) => {
    await deps.requireAdmin(request);
    return view(await deps.ca.state());
  });

  app.post('/admin/ca/rotate', async (request) => {
    await deps.requireAdmin(request);
    const body = (request.body ?? {}) as { announce_seconds?: unknown };
    const announce = body.announce_seconds ?? deps.defaultAnnounce;
    if (
      typeof body !== 'object' ||
      Array.isArray(body) ||
      typeof announce !== 'number' ||
      !Number.isInteger(announce) ||
      announce < 0 ||
      announce > 366 * 86400
    ) {
      throw new OAuthError('invalid_request', 'announce_seconds must be an integer from 0 to 31622400');
    }
    let staged: ReturnType<ServerEvents['stage']> | undefined;
    try {
      const state = await deps.ca.rotate(announce, (root) => {
        staged = deps.events.stage('ca.rotated', {
          actor: 'admin',
          subject: `ca-root:${root.serial}`,
          outcome: 'success',
          request_id: request.id,
          source_ip: request.ip,
          detail: { serial: root.serial, activate_at: root.activateAt },
        });
        return [staged];
      });
      deps.events.committed(staged!);
      return view(state);
    } catch (err) {
      if (err instanceof LatchkeyError && (err.code === 'ca_rotation_pending' || err.code === 'ca_operator_managed'))
        throw new OAuthError('invalid_request', err.message, 409);
      throw err;
    }
  });
}
