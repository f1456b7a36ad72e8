import { actorOf } from './admin_token.ts';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { conflict, LatchkeyError } from '../errors.ts';
import { adminErrors, Nullable, OptionalBody, typed } from '../http/schemas.ts';
import type { ServerEvents } from '../events.ts';
import type { CaState, WorkloadCa } from '../ca/workload_ca.ts';

export interface CaAdminDeps {
  ca: WorkloadCa;
  events: ServerEvents;
  /** Default announce period of a new root: the workload certificate lifetime. */
  defaultAnnounce: number;
}

const CaView = Type.Object({
  operator_managed: Type.Boolean(),
  roots: Type.Array(
    Type.Object({
      subject: Type.String(),
      serial: Type.String(),
      not_after: Type.String(),
      state: Type.Enum(['announced', 'active', 'retiring']),
      activate_at: Type.Integer(),
      retire_at: Nullable(Type.Integer()),
    }),
  ),
  bundle: Type.String({ description: 'the trust bundle (PEM)' }),
});
const tags = ['admin: workload CA'];

const view = (s: CaState) => ({ operator_managed: s.operatorManaged, roots: s.roots, bundle: s.bundlePem });

/** Admin API over the workload CA: `GET /admin/ca` (roots and their states), `POST /admin/ca/rotate`. */
export function registerCaAdmin(scope: FastifyInstance, deps: CaAdminDeps): void {
  const app = typed(scope);
  app.get('/admin/ca', { schema: { tags, response: { 200: CaView, ...adminErrors() } } }, async () => {
    return view(await deps.ca.state());
  });

  app.post(
    '/admin/ca/rotate',
    {
      schema: {
        tags,
        body: OptionalBody(
          Type.Object(
            {
              announce_seconds: Type.Optional(
                Type.Integer({
                  minimum: 0,
                  maximum: 366 * 86400,
                  description:
                    'how long the new root is in the bundle before it signs (default: the certificate lifetime)',
                }),
              ),
            },
            { additionalProperties: false },
          ),
        ),
        response: { 200: CaView, ...adminErrors(400, 409, 415) },
      },
    },
    async (request) => {
      const announce = request.body?.announce_seconds ?? deps.defaultAnnounce;
      let staged: ReturnType<ServerEvents['stage']> | undefined;
      try {
        const state = await deps.ca.rotate(announce, (root) => {
          staged = deps.events.stage('ca.rotated', {
            actor: actorOf(request),
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
          throw conflict(err.message);
        throw err;
      }
    },
  );
}
