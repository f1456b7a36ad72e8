import type { FastifyRequest } from 'fastify';
import type { ConsoleSessions } from '../console/console_sessions.ts';
import { AdminError } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import { invalidToken, requireBearer } from '../http/bearer.ts';
import { hashSecret, newSecret, verifySecret } from '../secrets.ts';
import type { SettingsStore } from '../storage/ports.ts';

const SETTING = 'admin_token_hash';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who called the admin API: `admin` (the bearer) or `admin:<username>` (a console user). */
    adminActor?: string;
  }
}

/** The audit actor of an admin API request (set by `adminGuard`). */
export const actorOf = (request: FastifyRequest): string => request.adminActor ?? 'admin';

/** Whether an audit actor is an administrator: the bearer, or a user signed in to the console. */
export const isAdminActor = (actor: string): boolean => actor === 'admin' || actor.startsWith('admin:');

/**
 * Sets up the bootstrap admin bearer. A configured token replaces the stored hash; with none
 * configured and none stored, a new one is generated and returned once so the caller can
 * print it. Only its hash is kept.
 */
export async function bootstrapAdminToken(
  store: SettingsStore,
  hashKey: Buffer,
  configured: string | undefined,
): Promise<string | undefined> {
  if (configured) {
    await store.setSetting(SETTING, hashSecret(hashKey, configured));
    return undefined;
  }
  const token = newSecret();
  const hash = hashSecret(hashKey, token);
  const stored = await store.setSettingIfAbsent(SETTING, hash);
  return stored === hash ? token : undefined;
}

/** Whether `token` is the admin bearer (constant time). */
export async function adminTokenValid(
  settings: Pick<SettingsStore, 'getSetting'>,
  hashKey: Buffer,
  token: string,
): Promise<boolean> {
  return verifySecret(hashKey, token, (await settings.getSetting(SETTING)) ?? null);
}

/** The admin console's session as a credential for the admin API. */
export interface ConsoleCredential {
  sessions: Pick<ConsoleSessions, 'current' | 'csrfMatches'>;
  /** The session cookie of a request, if it has one. */
  cookie: (request: FastifyRequest) => string | undefined;
  /** Whether a user's session still stands: the user exists, is enabled and holds the console role. */
  userAllowed: (sub: string) => Promise<boolean>;
}

/**
 * Checks the admin bearer in constant time; a wrong one is audited and answered per RFC 6750. A
 * request is checked once: the app's onRequest hook checks admin routes before their body is
 * read, and the handlers' own calls then cost nothing.
 *
 * Without an Authorization header, the admin console's session cookie stands for the bearer, on
 * every method, together with the session's CSRF token in `x-csrf-token` (a cross-site page can
 * make the browser send the cookie — SameSite=Strict already stops that — but never read or send
 * the token). The console uses the same routes as the CLI.
 */
export function adminGuard(deps: {
  settings: Pick<SettingsStore, 'getSetting'>;
  hashKey: Buffer;
  events: ServerEvents;
  console?: ConsoleCredential;
}) {
  const passed = new WeakSet<FastifyRequest>();
  return async (request: FastifyRequest): Promise<void> => {
    if (passed.has(request)) return;
    const cookie = request.headers.authorization === undefined ? deps.console?.cookie(request) : undefined;
    if (cookie !== undefined && deps.console) {
      const session = await deps.console.sessions.current(cookie);
      if (!session) throw invalidToken('the console session has ended: sign in again');
      // A user disabled, deleted or stripped of the role loses the console at their next request.
      if (session.sub !== null && !(await deps.console.userAllowed(session.sub)))
        throw invalidToken('the user can no longer use the console');
      if (!deps.console.sessions.csrfMatches(cookie, request.headers['x-csrf-token']))
        throw new AdminError('csrf_failed', 'the console session needs its CSRF token in x-csrf-token');
      request.adminActor = session.actor;
      passed.add(request);
      return;
    }
    const token = requireBearer(request);
    if (!(await adminTokenValid(deps.settings, deps.hashKey, token))) {
      await deps.events.emit('admin.auth_failed', {
        actor: 'anonymous',
        outcome: 'failure',
        reason: 'invalid_token',
        request_id: request.id,
        source_ip: request.ip,
      });
      throw invalidToken('the admin token is not valid');
    }
    passed.add(request);
  };
}
