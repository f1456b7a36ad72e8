import { actorOf } from './admin_token.ts';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { type ConsoleSessions, SIGN_IN_LINK_TTL } from '../console/console_sessions.ts';
import type { ServerEvents } from '../events.ts';
import { adminErrors, typed } from '../http/schemas.ts';

export interface ConsoleAdminDeps {
  sessions: Pick<ConsoleSessions, 'issueLinkCode'>;
  events: ServerEvents;
  issuer: string;
}

/**
 * POST /admin/console/links: a one-time sign-in link to the console (`latchkey console link`,
 * `npm run demo`). The code travels in the URL's fragment, which browsers never send to a server
 * or in a Referer: it reaches no access log on the way; the page posts it to `/console/session`.
 */
export function registerConsoleAdmin(scope: FastifyInstance, deps: ConsoleAdminDeps): void {
  typed(scope).post(
    '/admin/console/links',
    {
      schema: {
        tags: ['admin: console'],
        response: {
          200: Type.Object({
            url: Type.String({ description: 'open it once within expires_in seconds' }),
            expires_at: Type.Integer({ description: 'epoch seconds' }),
            expires_in: Type.Integer(),
          }),
          ...adminErrors(),
        },
      },
    },
    async (request) => {
      const { code, expiresAt } = deps.sessions.issueLinkCode();
      await deps.events.emit('console.link_issued', {
        actor: actorOf(request),
        outcome: 'success',
        request_id: request.id,
        source_ip: request.ip,
        detail: { expires_at: expiresAt },
      });
      return {
        url: `${deps.issuer}/console/#/sign-in?code=${code}`,
        expires_at: expiresAt,
        expires_in: SIGN_IN_LINK_TTL,
      };
    },
  );
}
