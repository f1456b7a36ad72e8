import { actorOf } from './admin_token.ts';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { notFound } from '../errors.ts';
import { adminErrors, Nullable, Rfc3339, typed } from '../http/schemas.ts';
import type { UserStore } from '../storage/ports.ts';
import type { Consents } from '../users/consents.ts';
import { findUser } from './user_admin.ts';

export interface ConsentAdminDeps {
  users: Pick<UserStore, 'getUser' | 'getUserByUsername'>;
  consents: Pick<Consents, 'list' | 'withdraw'>;
}

const tags = ['admin: users'];
const Params = Type.Object({ user: Type.String({ minLength: 1, maxLength: 255 }) });
const ClientParams = Type.Object({
  user: Type.String({ minLength: 1, maxLength: 255 }),
  client: Type.String({ minLength: 1, maxLength: 255, description: 'the client id' }),
});
const ConsentView = Type.Object(
  {
    client_id: Type.String(),
    scope: Nullable(Type.String({ description: 'the scopes agreed to, space-separated' })),
    resource: Type.Array(Type.String(), { description: 'the resources (RFC 8707) agreed to' }),
    granted_at: Rfc3339('when the user first agreed'),
    updated_at: Rfc3339('when the user last agreed to more'),
  },
  { description: "a user's consent to a third-party client" },
);
const rfc3339 = (seconds: number) => new Date(seconds * 1000).toISOString();

/**
 * A user's consents to third-party clients: listed, and withdrawn — which revokes what the client
 * holds for the user (its refresh tokens and their access tokens), so the next sign-in asks again.
 */
export function registerConsentAdmin(scope: FastifyInstance, deps: ConsentAdminDeps): void {
  const app = typed(scope);
  app.get(
    '/admin/users/:user/consents',
    {
      schema: {
        tags,
        summary: "the user's consents to third-party clients",
        params: Params,
        response: { 200: Type.Object({ consents: Type.Array(ConsentView) }), ...adminErrors(404) },
      },
    },
    async (request) => {
      const user = await findUser(deps.users, request.params.user);
      const consents = await deps.consents.list(user.sub);
      return {
        consents: consents.map((c) => ({
          client_id: c.clientId,
          scope: c.scope,
          resource: c.resource,
          granted_at: rfc3339(c.grantedAt),
          updated_at: rfc3339(c.updatedAt),
        })),
      };
    },
  );
  app.delete(
    '/admin/users/:user/consents/:client',
    {
      schema: {
        tags,
        summary: "withdraws a user's consent to a client, revoking the client's tokens for the user",
        params: ClientParams,
        response: { 204: Type.Null(), ...adminErrors(404) },
      },
    },
    async (request, reply) => {
      const user = await findUser(deps.users, request.params.user);
      if (!(await deps.consents.withdraw(request, actorOf(request), user.sub, request.params.client)))
        throw notFound('the user has no consent to that client');
      return reply.code(204).send(null);
    },
  );
}
