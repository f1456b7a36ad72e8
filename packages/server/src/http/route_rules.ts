import type { OAuthErrorCode } from '@latchkey/protocol';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { AdminError, OAuthError } from '../errors.ts';

/**
 * What a caller must present to reach a route:
 * - `none`: anyone (discovery, JWKS, health, the CA bundle, the OpenAPI document);
 * - `admin`: the admin bearer — every route in the admin scope, checked by its onRequest hook
 *   before the body is read;
 * - `client`: client authentication (RFC 6749 §2.3: Basic, post, private_key_jwt, mTLS);
 * - `service`: a registered client as a service: client authentication or one of its own access
 *   tokens audienced to the IdP (feeds, audit ingestion, workload certificates);
 * - `registration`: the client's RFC 7592 registration access token;
 * - `user`: a user's access token issued for the IdP (OpenID Connect UserInfo), checked by the route;
 * - `console`: the admin console's session cookie (reading or ending the session), checked by the route.
 *   (Admin routes take the session too, with its CSRF token, in place of the admin bearer.)
 */
export const CREDENTIALS = ['none', 'admin', 'client', 'service', 'registration', 'user', 'console'] as const;
export type Credential = (typeof CREDENTIALS)[number];

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which credential the route needs; every route states one (the admin scope states it for its routes). */
    credential?: Credential;
    /** The OAuth error a schema failure answers with on this route (default `invalid_request`). */
    schemaError?: OAuthErrorCode;
    /** In the service scope: a scope a Bearer caller's token must carry. */
    requiredScope?: string;
  }
  interface FastifyRequest {
    /** In the service scope: the client that authenticated (set before the body is read). */
    serviceClientId: string;
  }
}

/** One registered route, as the route walk in the tests and the OpenAPI document see it. */
export interface RouteEntry {
  method: string;
  url: string;
  credential: Credential | undefined;
}

/**
 * Keeps the table of routes and refuses to start when one states no credential: a route that
 * forgot its authentication fails the first `ready()`, not a penetration test.
 */
export function routeTable(app: FastifyInstance): () => RouteEntry[] {
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });
  const table = (): RouteEntry[] =>
    routes.flatMap((r) =>
      (Array.isArray(r.method) ? r.method : [r.method]).map((method) => ({
        method,
        url: r.url,
        credential: r.config?.credential,
      })),
    );
  app.addHook('onReady', async () => {
    const missing = table().filter((r) => !r.credential || !(CREDENTIALS as readonly string[]).includes(r.credential));
    if (missing.length > 0)
      throw new Error(
        `routes without a credential (config.credential): ${missing.map((r) => `${r.method} ${r.url}`).join(', ')}`,
      );
  });
  return table;
}

/**
 * The admin scope: every route registered inside `register` needs the admin bearer, checked in
 * onRequest (before Fastify reads the body: an anonymous 16 MiB policy push costs a header
 * check). A new admin route cannot forget it.
 */
export function adminScope(
  app: FastifyInstance,
  requireAdmin: (request: FastifyRequest) => Promise<void>,
  register: (scope: FastifyInstance) => void,
): void {
  app.register(async (scope) => {
    scope.addHook('onRoute', (route) => {
      route.config = { ...route.config, credential: 'admin' };
    });
    scope.addHook('onRequest', requireAdmin);
    register(scope);
  });
}

/**
 * The service scope: every route registered inside `register` is called by a registered client
 * as a service (client authentication, or one of its own access tokens audienced to the IdP),
 * checked in onRequest; the handler reads `request.serviceClientId`.
 */
export function serviceScope(
  app: FastifyInstance,
  caller: (request: FastifyRequest, options?: { requiredScope?: string }) => Promise<string>,
  register: (scope: FastifyInstance) => void,
): void {
  app.register(async (scope) => {
    scope.decorateRequest('serviceClientId', '');
    scope.addHook('onRoute', (route) => {
      route.config = { ...route.config, credential: 'service' };
    });
    scope.addHook('onRequest', async (request) => {
      const requiredScope = request.routeOptions.config.requiredScope;
      request.serviceClientId = await caller(request, requiredScope ? { requiredScope } : {});
    });
    register(scope);
  });
}

/**
 * The scope of routes that state their own credential (`none`, `client`, `registration`). Like
 * the others it is a plugin, so that it loads after the OpenAPI generator, which sees every route.
 */
export function publicScope(app: FastifyInstance, register: (scope: FastifyInstance) => void): void {
  app.register(async (scope) => register(scope));
}

/** Whether the route belongs to the admin API, whose errors have the admin shape (docs/errors.md). */
export const isAdminApi = (request: FastifyRequest): boolean =>
  /^\/(admin|console)\//.test(request.routeOptions.url ?? '');

/** The media type of the request body, lowercased, without parameters. */
const mediaType = (request: FastifyRequest): string =>
  String(request.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
    .toLowerCase();

const hasBody = (request: FastifyRequest): boolean =>
  request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;

/**
 * One content-type rule for every route: a body must be of the media type the route's schema
 * `consumes` (JSON unless it says otherwise), refused with 415 before it is parsed.
 */
export function enforceContentTypes(app: FastifyInstance): void {
  app.addHook('preParsing', async (request, _reply, payload) => {
    if (!hasBody(request)) return payload;
    const consumes = (request.routeOptions.schema as { consumes?: string[] } | undefined)?.consumes ?? [
      'application/json',
    ];
    if (consumes.includes(mediaType(request))) return payload;
    const description = `the request body must be ${consumes.join(' or ')}`;
    throw isAdminApi(request)
      ? new AdminError('unsupported_media_type', description)
      : new OAuthError('invalid_request', description, 415);
  });
}
