import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { AdminError } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import { invalidToken } from '../http/bearer.ts';
import { adminErrors, typed } from '../http/schemas.ts';
import { cookiesOf } from '../oauth/authorize/cookies.ts';
import { CONSOLE_ADMIN_ROLE, CONSOLE_CLIENT_ID, mayUseConsole } from './console_client.ts';
import type { ConsoleSessions } from './console_sessions.ts';

/**
 * Where the console's compiled files are: `packages/server/console-dist`, written by
 * `npm run build` (scripts/build_console.ts) from `packages/server/console/`. The same path from
 * `src/console/` and `dist/console/`.
 */
export const CONSOLE_DIST = fileURLToPath(new URL('../../console-dist/', import.meta.url));

/**
 * The console's Content Security Policy: its own script and stylesheet only, data only from its
 * own origin (the admin API), nothing inline, no framing, no form posting elsewhere. The charts
 * are drawn on canvases; the styles uPlot and Preact set go through the CSSOM, which CSP allows.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
} as const;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

/** The compiled files, read once: name → bytes (index.html apart). */
function loadAssets(dir: string): { index: Buffer | undefined; assets: Map<string, Buffer> } {
  const assets = new Map<string, Buffer>();
  if (!existsSync(join(dir, 'index.html'))) return { index: undefined, assets };
  const assetDir = join(dir, 'assets');
  if (existsSync(assetDir))
    for (const name of readdirSync(assetDir))
      if (TYPES[extname(name)]) assets.set(name, readFileSync(join(assetDir, name)));
  return { index: readFileSync(join(dir, 'index.html')), assets };
}

export interface ConsoleRouteDeps {
  sessions: ConsoleSessions;
  events: ServerEvents;
  /** Checks the admin bearer (a sign-in with it). */
  checkAdminToken: (token: string) => Promise<boolean>;
  /** The name of the session cookie (`__Host-lk-console` on HTTPS). */
  cookieName: string;
  secure: boolean;
  /** Where the compiled console is (tests may point elsewhere). */
  dist?: string;
  /** Users signing in: the IdP's issuer and the console's own client (created on first use). */
  users?: {
    issuer: string;
    ensureClient: () => Promise<void>;
    /**
     * The user an access token stands for, if it is a live user token of the console's client
     * issued for the IdP; with the user's username, roles and state.
     */
    userOf: (
      token: string,
    ) => Promise<{ sub: string; username: string; roles: readonly string[]; disabled: boolean } | undefined>;
  };
}

const SessionBody = Type.Object({
  csrf: Type.String({ description: 'send it as x-csrf-token with every admin API call' }),
  expires_at: Type.Integer({ description: 'when the session ends at the latest (epoch seconds)' }),
});

/**
 * The admin console (`/console/`): a compiled single-page application and its sign-in. The
 * pages call the admin API with the session cookie and CSRF token (admin_token.ts); there are no
 * console-only data routes. `POST /console/session` signs in with the admin bearer or a one-time
 * link's code (`POST /admin/console/links`), `GET` hands a reloaded page its CSRF token, `DELETE`
 * signs out.
 */
export function registerConsole(scope: FastifyInstance, deps: ConsoleRouteDeps): void {
  const app = typed(scope);
  const { index, assets } = loadAssets(deps.dist ?? CONSOLE_DIST);
  const cookieOf = (request: FastifyRequest) => cookiesOf(request).get(deps.cookieName);
  const setCookie = (reply: FastifyReply, value: string, maxAge: number) =>
    reply.header(
      'set-cookie',
      `${deps.cookieName}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${deps.secure ? '; Secure' : ''}`,
    );
  /** A started session: its cookie set, the page told its CSRF token. */
  const signedIn = (reply: FastifyReply, { cookie, csrf, session }: Awaited<ReturnType<ConsoleSessions['start']>>) => {
    setCookie(reply, cookie, deps.sessions.lifetime);
    reply.header('cache-control', 'no-store');
    return { csrf, expires_at: session.expiresAt };
  };
  const file = (summary: string, type: string) => ({
    tags: ['console'],
    summary,
    response: {
      200: { description: type, content: { [type]: { schema: { type: 'string' } } } },
      404: { description: 'no such file', content: { 'application/json': { schema: { type: 'object' } } } },
      503: {
        description: 'the console is not built (text/plain)',
        content: { 'text/plain': { schema: { type: 'string' } } },
      },
    },
  });

  app.get(
    '/console',
    {
      config: { credential: 'none' },
      schema: {
        tags: ['console'],
        summary: 'to /console/',
        response: { 308: { description: 'to /console/', type: 'null' } },
      },
    },
    async (_request, reply) => reply.code(308).header('location', '/console/').send(null),
  );
  app.get(
    '/console/',
    { config: { credential: 'none' }, schema: file('the admin console (a single page)', 'text/html') },
    async (_request, reply) => {
      if (!index)
        return reply
          .code(503)
          .headers({ ...HEADERS, 'cache-control': 'no-store', 'content-type': 'text/plain; charset=utf-8' })
          .send('The console is not built: run `npm run build`.\n');
      return reply.headers({ ...HEADERS, 'cache-control': 'no-cache', 'content-type': TYPES['.html']! }).send(index);
    },
  );
  app.get<{ Params: { file: string } }>(
    '/console/assets/:file',
    {
      config: { credential: 'none' },
      schema: {
        ...file("the console's compiled script or stylesheet", 'text/javascript'),
        params: { type: 'object', properties: { file: { type: 'string', maxLength: 100 } } },
      },
    },
    async (request, reply) => {
      const body = assets.get(request.params.file);
      if (!body) throw new AdminError('not_found', 'no such console file');
      // Names carry a content hash (esbuild's [hash]): a new build has new names.
      return reply
        .headers({
          ...HEADERS,
          'cache-control': 'public, max-age=31536000, immutable',
          'content-type': TYPES[extname(request.params.file)]!,
        })
        .send(body);
    },
  );

  app.post(
    '/console/session',
    {
      config: { credential: 'none' },
      schema: {
        tags: ['console'],
        summary: 'sign in to the console with the admin bearer or a one-time link code; sets the session cookie',
        body: Type.Union([
          Type.Object({ admin_token: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false }),
          Type.Object({ code: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
          Type.Object(
            {
              access_token: Type.String({
                minLength: 1,
                maxLength: 8192,
                description: `a user's access token from the ${CONSOLE_CLIENT_ID} client, issued for the IdP; the user needs the ${CONSOLE_ADMIN_ROLE} role`,
              }),
            },
            { additionalProperties: false },
          ),
        ]),
        response: { 200: SessionBody, ...adminErrors(400, 415) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if ('access_token' in body) {
        const user = deps.users ? await deps.users.userOf(body.access_token) : undefined;
        if (!mayUseConsole(user)) {
          await deps.events.emit('admin.auth_failed', {
            actor: user ? user.username : 'anonymous',
            outcome: 'failure',
            reason: user ? 'not_a_console_admin' : 'invalid_user_token',
            request_id: request.id,
            source_ip: request.ip,
          });
          throw user
            ? invalidToken(`the user needs the ${CONSOLE_ADMIN_ROLE} role to use the console`)
            : invalidToken('the access token is not a live user token of the console');
        }
        return signedIn(
          reply,
          await deps.sessions.start('user', request, { actor: `admin:${user!.username}`, sub: user!.sub }),
        );
      }
      const method = 'code' in body ? 'sign_in_link' : 'admin_token';
      const ok =
        'code' in body ? await deps.sessions.useLinkCode(body.code) : await deps.checkAdminToken(body.admin_token);
      if (!ok) {
        await deps.events.emit('admin.auth_failed', {
          actor: 'anonymous',
          outcome: 'failure',
          reason: method === 'sign_in_link' ? 'invalid_sign_in_link' : 'invalid_token',
          request_id: request.id,
          source_ip: request.ip,
        });
        throw invalidToken(
          method === 'sign_in_link' ? 'the sign-in link is not valid, expired or used' : 'the admin token is not valid',
        );
      }
      return signedIn(reply, await deps.sessions.start(method, request));
    },
  );

  /** What the page needs to send a user through the IdP's sign-in (authorization code + PKCE). */
  app.get(
    '/console/sign-in',
    {
      config: { credential: 'none' },
      schema: {
        tags: ['console'],
        summary: "the console's OAuth client, for signing in with a user account (RFC 6749 §4.1, RFC 7636)",
        response: {
          200: Type.Object({
            client_id: Type.String(),
            redirect_uri: Type.String(),
            resource: Type.String(),
            scope: Type.String(),
            authorization_endpoint: Type.String(),
            token_endpoint: Type.String(),
            role: Type.String({ description: 'the role a user needs' }),
          }),
          ...adminErrors(404),
        },
      },
    },
    async (_request, reply) => {
      if (!deps.users) throw new AdminError('not_found', 'signing in with a user account is not available');
      await deps.users.ensureClient();
      const issuer = deps.users.issuer;
      reply.header('cache-control', 'no-store');
      return {
        client_id: CONSOLE_CLIENT_ID,
        redirect_uri: `${issuer}/console/`,
        resource: issuer,
        scope: 'openid',
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        role: CONSOLE_ADMIN_ROLE,
      };
    },
  );

  app.get(
    '/console/session',
    {
      config: { credential: 'console' },
      schema: {
        tags: ['console'],
        summary: "the signed-in session's CSRF token",
        response: { 200: SessionBody, ...adminErrors() },
      },
    },
    async (request, reply) => {
      const cookie = cookieOf(request);
      const session = await deps.sessions.current(cookie);
      if (!cookie || !session) throw invalidToken('not signed in to the console');
      reply.header('cache-control', 'no-store');
      return { csrf: deps.sessions.csrfOf(cookie), expires_at: session.expiresAt };
    },
  );

  app.delete(
    '/console/session',
    {
      config: { credential: 'console' },
      schema: {
        tags: ['console'],
        summary: 'sign out of the console (needs x-csrf-token)',
        response: { 204: Type.Null(), ...adminErrors(403) },
      },
    },
    async (request, reply) => {
      const cookie = cookieOf(request);
      const session = await deps.sessions.current(cookie);
      if (!cookie || !session) throw invalidToken('not signed in to the console');
      if (!deps.sessions.csrfMatches(cookie, request.headers['x-csrf-token']))
        throw new AdminError('csrf_failed', 'signing out needs the session CSRF token in x-csrf-token');
      await deps.sessions.end(session, request);
      setCookie(reply, '', 0);
      return reply.code(204).send(null);
    },
  );
}
