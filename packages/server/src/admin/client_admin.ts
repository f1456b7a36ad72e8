import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OAuthError } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import { validateClientMetadata, withTlsSubject } from '../oauth/registration/client_metadata.ts';
import { clientInformation } from '../oauth/registration/registration_endpoints.ts';
import type { RevocationLog } from '../revocation/revocation_log.ts';
import type { ClientStore } from '../storage/ports.ts';

export interface ClientAdminDeps {
  issuer: string;
  clients: ClientStore;
  events: ServerEvents;
  revocations: Pick<RevocationLog, 'revokeNotBefore'>;
  requireAdmin: (request: FastifyRequest) => Promise<void>;
  limits: { maxAccessTokenTtl: number; allowHttpJwksUri: boolean };
  spiffeIdOf: (clientId: string) => string;
}

const notFound = (): OAuthError => new OAuthError('invalid_request', 'no such client', 404);

/** Admin API over clients (list, show, delete), behind the admin bearer. Creation is POST /register. */
export function registerClientAdmin(app: FastifyInstance, deps: ClientAdminDeps): void {
  app.get('/admin/clients', async (request) => {
    await deps.requireAdmin(request);
    const clients = await deps.clients.listClients();
    return { clients: clients.map((c) => ({ ...clientInformation(deps.issuer, c), disabled: c.disabled })) };
  });

  app.get('/admin/clients/:clientId', async (request) => {
    await deps.requireAdmin(request);
    const client = await deps.clients.getClient((request.params as { clientId: string }).clientId);
    if (!client) throw notFound();
    return {
      ...clientInformation(deps.issuer, client),
      disabled: client.disabled,
      locked_until: lockedUntil(client.lockedUntil),
    };
  });

  /**
   * Revoking a client disables it for new tokens and revokes every token it holds: a not-before
   * entry on the revocation feed, so services drop them too.
   */
  app.post('/admin/clients/:clientId/revoke', async (request) => {
    await deps.requireAdmin(request);
    const { clientId } = request.params as { clientId: string };
    const client = await deps.clients.getClient(clientId);
    if (!client) throw notFound();
    const disabled = { ...client, disabled: true, updatedAt: Math.floor(Date.now() / 1000) };
    const event = deps.events.stage('client.revoked', {
      actor: 'admin',
      subject: clientId,
      client_id: clientId,
      outcome: 'success',
      request_id: request.id,
      source_ip: request.ip,
    });
    // The revocation (with its event) first: a crash before the client is disabled leaves its
    // tokens revoked everywhere, and repeating the request (idempotent) disables it.
    await deps.revocations.revokeNotBefore('client', clientId, [event]);
    deps.events.committed(event);
    await deps.clients.updateClient(disabled);
    return { ...clientInformation(deps.issuer, disabled), disabled: true };
  });

  /**
   * Replaces a client's metadata — the administrator's way to widen audiences, scope, roles,
   * lifetime or policy namespaces, which the client itself may only narrow (RFC 7592). The
   * authentication method stays (change it with RFC 7592, where a new secret can be shown).
   */
  app.put('/admin/clients/:clientId', async (request) => {
    await deps.requireAdmin(request);
    const { clientId } = request.params as { clientId: string };
    if (!/^application\/json\s*(;|$)/i.test(String(request.headers['content-type'] ?? '')))
      throw new OAuthError('invalid_request', 'the request body must be application/json', 415);
    const client = await deps.clients.getClient(clientId);
    if (!client) throw notFound();
    const metadata = withTlsSubject(validateClientMetadata(request.body, deps.limits), deps.spiffeIdOf(clientId));
    if (metadata.token_endpoint_auth_method !== client.metadata.token_endpoint_auth_method) {
      throw new OAuthError(
        'invalid_client_metadata',
        'token_endpoint_auth_method cannot change here; the client changes it through RFC 7592',
      );
    }
    const updated = { ...client, metadata, updatedAt: Math.floor(Date.now() / 1000) };
    const event = deps.events.stage('client.updated', {
      actor: 'admin',
      subject: clientId,
      client_id: clientId,
      outcome: 'success',
      request_id: request.id,
      source_ip: request.ip,
    });
    if (!(await deps.clients.updateClient(updated, [event]))) throw notFound();
    deps.events.committed(event);
    return { ...clientInformation(deps.issuer, updated), disabled: updated.disabled };
  });

  /** Lifts a lock a detector's response put on the client. */
  app.post('/admin/clients/:clientId/unlock', async (request) => {
    await deps.requireAdmin(request);
    const { clientId } = request.params as { clientId: string };
    const event = deps.events.stage('client.unlocked', {
      actor: 'admin',
      subject: clientId,
      client_id: clientId,
      outcome: 'success',
      request_id: request.id,
      source_ip: request.ip,
    });
    if (!(await deps.clients.lockClient(clientId, null, [event]))) throw notFound();
    deps.events.committed(event);
    return { client_id: clientId, locked_until: null };
  });

  /** Every token whose subject is `sub`, issued until now, is revoked (a subject not-before entry). */
  app.post('/admin/subjects/:sub/revoke', async (request) => {
    await deps.requireAdmin(request);
    const { sub } = request.params as { sub: string };
    if (sub.length === 0 || sub.length > 255)
      throw new OAuthError('invalid_request', 'subject must be 1 to 255 characters');
    const event = deps.events.stage('subject.revoked', {
      actor: 'admin',
      subject: sub,
      outcome: 'success',
      request_id: request.id,
      source_ip: request.ip,
    });
    const cursor = await deps.revocations.revokeNotBefore('subject', sub, [event]);
    deps.events.committed(event);
    return { sub, revoked: true, cursor: String(cursor) };
  });

  app.delete('/admin/clients/:clientId', async (request, reply) => {
    await deps.requireAdmin(request);
    const { clientId } = request.params as { clientId: string };
    if (!(await deps.clients.getClient(clientId))) throw notFound();
    const event = deps.events.stage('client.deleted', {
      actor: 'admin',
      subject: clientId,
      client_id: clientId,
      outcome: 'success',
      request_id: request.id,
      source_ip: request.ip,
    });
    // Its tokens must stop working at every service too, not only at introspection: the
    // revocation (with the event) first, then the row, as for RFC 7592 DELETE.
    await deps.revocations.revokeNotBefore('client', clientId, [event]);
    deps.events.committed(event);
    await deps.clients.deleteClient(clientId);
    return reply.code(204).send();
  });
}

/** A lock still in force, as RFC 3339; null when there is none or it has passed. */
function lockedUntil(until: number | null): string | null {
  return until !== null && until > Date.now() / 1000 ? new Date(until * 1000).toISOString() : null;
}
