import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OAuthError } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import { clientInformation } from '../oauth/registration/registration_endpoints.ts';
import type { ClientStore } from '../storage/ports.ts';

export interface ClientAdminDeps {
  issuer: string;
  clients: ClientStore;
  events: ServerEvents;
  requireAdmin: (request: FastifyRequest) => Promise<void>;
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
    return { ...clientInformation(deps.issuer, client), disabled: client.disabled };
  });

  app.delete('/admin/clients/:clientId', async (request, reply) => {
    await deps.requireAdmin(request);
    const { clientId } = request.params as { clientId: string };
    if (!(await deps.clients.deleteClient(clientId))) throw notFound();
    deps.events.emit('client.deleted', { actor: 'admin', subject: clientId, client_id: clientId, outcome: 'success', request_id: request.id, source_ip: request.ip });
    return reply.code(204).send();
  });
}
