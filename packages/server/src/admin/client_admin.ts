import { actorOf } from './admin_token.ts';
import { revokeThen } from '../revocation/revoke_then.ts';
import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { notFound, OAuthError } from '../errors.ts';
import { adminErrors, ClientIdParams, Open, OptionalBody, ref, typed } from '../http/schemas.ts';
import { aboutClient, type ServerEvents } from '../events.ts';
import { validateClientMetadata, withTlsSubject } from '../oauth/registration/client_metadata.ts';
import { clientInformation } from '../oauth/registration/registration_endpoints.ts';
import type { RevocationLog } from '../revocation/revocation_log.ts';
import type { ClientStore } from '../storage/ports.ts';

export interface ClientAdminDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  issuer: string;
  clients: ClientStore;
  events: ServerEvents;
  revocations: Pick<RevocationLog, 'revokeNotBefore'>;
  limits: { maxAccessTokenTtl: number; allowHttpJwksUri: boolean };
  spiffeIdOf: (clientId: string) => string;
}

const noSuchClient = () => notFound('no such client');

/** A client as the admin API shows it: its RFC 7591 information and its state. */
const ClientView = Open(
  {
    client_id: Type.String(),
    client_id_issued_at: Type.Integer(),
    registration_client_uri: Type.String(),
    disabled: Type.Boolean(),
    locked_until: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  },
  'client information (RFC 7591 §3.2.1 members) and state',
);
const tags = ['admin: clients'];

/** Admin API over clients (list, show, delete), behind the admin bearer. Creation is POST /register. */
export function registerClientAdmin(scope: FastifyInstance, deps: ClientAdminDeps): void {
  const app = typed(scope);
  app.get(
    '/admin/clients',
    { schema: { tags, response: { 200: Type.Object({ clients: Type.Array(ClientView) }), ...adminErrors() } } },
    async () => {
      const clients = await deps.clients.listClients();
      return { clients: clients.map((c) => ({ ...clientInformation(deps.issuer, c), disabled: c.disabled })) };
    },
  );

  app.get(
    '/admin/clients/:clientId',
    { schema: { tags, params: ClientIdParams, response: { 200: ClientView, ...adminErrors(404) } } },
    async (request) => {
      const client = await deps.clients.getClient(request.params.clientId);
      if (!client) throw noSuchClient();
      return {
        ...clientInformation(deps.issuer, client),
        disabled: client.disabled,
        locked_until: lockedUntil(client.lockedUntil, deps.clock.now()),
      };
    },
  );

  /**
   * Revoking a client disables it for new tokens and revokes every token it holds: a not-before
   * entry on the revocation feed, so services drop them too.
   */
  app.post(
    '/admin/clients/:clientId/revoke',
    {
      schema: {
        tags,
        params: ClientIdParams,
        body: OptionalBody(
          Type.Object(
            {
              compromised: Type.Optional(
                Type.Boolean({
                  description:
                    'its credential was compromised: Shared Signals receivers also get a RISC credential-compromise event',
                }),
              ),
            },
            { additionalProperties: false },
          ),
        ),
        response: { 200: ClientView, ...adminErrors(404) },
      },
    },
    async (request) => {
      const { clientId } = request.params;
      const client = await deps.clients.getClient(clientId);
      if (!client) throw noSuchClient();
      const disabled = { ...client, disabled: true, updatedAt: epochSeconds(deps.clock) };
      const compromised = request.body?.compromised === true;
      const event = deps.events.stage('client.revoked', {
        ...aboutClient(actorOf(request), clientId, request),
        ...(compromised ? { detail: { compromised: true, method: client.metadata.token_endpoint_auth_method } } : {}),
      });
      await revokeThen(deps, 'client', clientId, event, () => deps.clients.updateClient(disabled));
      return { ...clientInformation(deps.issuer, disabled), disabled: true };
    },
  );

  /**
   * Replaces a client's metadata — the administrator's way to widen audiences, scope, roles,
   * lifetime or policy namespaces, which the client itself may only narrow (RFC 7592). The
   * authentication method stays (change it with RFC 7592, where a new secret can be shown).
   */
  app.put(
    '/admin/clients/:clientId',
    {
      schema: {
        tags,
        params: ClientIdParams,
        body: ref('ClientMetadata'),
        response: { 200: ClientView, ...adminErrors(400, 404, 415) },
      },
    },
    async (request) => {
      const { clientId } = request.params;
      const client = await deps.clients.getClient(clientId);
      if (!client) throw noSuchClient();
      const metadata = withTlsSubject(validateClientMetadata(request.body, deps.limits), deps.spiffeIdOf(clientId));
      if (metadata.token_endpoint_auth_method !== client.metadata.token_endpoint_auth_method) {
        throw new OAuthError(
          'invalid_client_metadata',
          'token_endpoint_auth_method cannot change here; the client changes it through RFC 7592',
        );
      }
      const updated = { ...client, metadata, updatedAt: epochSeconds(deps.clock) };
      const event = deps.events.stage('client.updated', {
        ...aboutClient(actorOf(request), clientId, request),
      });
      if (!(await deps.clients.updateClient(updated, [event]))) throw noSuchClient();
      deps.events.committed(event);
      return { ...clientInformation(deps.issuer, updated), disabled: updated.disabled };
    },
  );

  /** Lifts a lock a detector's response put on the client. */
  app.post(
    '/admin/clients/:clientId/unlock',
    {
      schema: {
        tags,
        params: ClientIdParams,
        response: { 200: Type.Object({ client_id: Type.String(), locked_until: Type.Null() }), ...adminErrors(404) },
      },
    },
    async (request) => {
      const { clientId } = request.params;
      const event = deps.events.stage('client.unlocked', {
        ...aboutClient(actorOf(request), clientId, request),
      });
      if (!(await deps.clients.lockClient(clientId, null, [event]))) throw noSuchClient();
      deps.events.committed(event);
      return { client_id: clientId, locked_until: null };
    },
  );

  /** Every token whose subject is `sub`, issued until now, is revoked (a subject not-before entry). */
  app.post(
    '/admin/subjects/:sub/revoke',
    {
      schema: {
        tags,
        params: Type.Object({ sub: Type.String({ minLength: 1, maxLength: 255 }) }),
        response: {
          200: Type.Object({ sub: Type.String(), revoked: Type.Boolean(), cursor: Type.String() }),
          ...adminErrors(400),
        },
      },
    },
    async (request) => {
      const { sub } = request.params;
      const event = deps.events.stage('subject.revoked', {
        actor: actorOf(request),
        subject: sub,
        outcome: 'success',
        request_id: request.id,
        source_ip: request.ip,
      });
      const cursor = await revokeThen(deps, 'subject', sub, event);
      return { sub, revoked: true, cursor: String(cursor) };
    },
  );

  app.delete(
    '/admin/clients/:clientId',
    { schema: { tags, params: ClientIdParams, response: { 204: Type.Null(), ...adminErrors(404) } } },
    async (request, reply) => {
      const { clientId } = request.params;
      if (!(await deps.clients.getClient(clientId))) throw noSuchClient();
      const event = deps.events.stage('client.deleted', {
        ...aboutClient(actorOf(request), clientId, request),
      });
      // Its tokens must stop working at every service too, not only at introspection.
      await revokeThen(deps, 'client', clientId, event, () => deps.clients.deleteClient(clientId));
      return reply.code(204).send(null);
    },
  );
}

/** A lock still in force, as RFC 3339; null when there is none or it has passed. */
function lockedUntil(until: number | null, now: number): string | null {
  return until !== null && until > now / 1000 ? new Date(until * 1000).toISOString() : null;
}
