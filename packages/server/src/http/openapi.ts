import fastifySwagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import type { Credential } from './route_rules.ts';

/** How each credential appears in the OpenAPI document (components.securitySchemes). */
const SECURITY: Record<Credential, Record<string, string[]>[]> = {
  none: [],
  admin: [{ adminBearer: [] }, { consoleSession: [], csrfToken: [] }],
  // client_secret_post and private_key_jwt put credentials in the form body, which OpenAPI has no scheme for.
  client: [{ clientBasic: [] }, { mutualTls: [] }, {}],
  service: [{ clientBasic: [] }, { serviceBearer: [] }, { mutualTls: [] }],
  registration: [{ registrationBearer: [] }],
  user: [{ userBearer: [] }],
  console: [{ consoleSession: [] }],
};

/**
 * The OpenAPI 3.1 document of every route, made by @fastify/swagger from the route schemas and
 * served at `GET /openapi.json`; docs/openapi.json is the committed copy (`npm run docs`, kept
 * equal by a test). Security requirements come from each route's credential.
 */
export function registerOpenApi(app: FastifyInstance, version: string): void {
  app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Latchkey identity provider',
        version,
        description:
          'OAuth 2.0 token service (client_credentials; authorization code with PKCE and OpenID Connect for users; RFC 9068 access tokens), introspection, revocation, dynamic client registration, feeds of revocations, keys and policy, the workload CA, the audit trail and the admin API. Errors: docs/errors.md.',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      components: {
        securitySchemes: {
          adminBearer: { type: 'http', scheme: 'bearer', description: 'the admin bearer (LATCHKEY_ADMIN_TOKEN)' },
          userBearer: {
            type: 'http',
            scheme: 'bearer',
            description: "a user's access token for the IdP, with the openid scope (authorization code flow)",
          },
          clientBasic: { type: 'http', scheme: 'basic', description: 'client_secret_basic (RFC 6749 §2.3.1)' },
          // OpenAPI 3.1's mutualTLS scheme (openapi-types describes 3.0, which lacks it).
          mutualTls: {
            type: 'mutualTLS',
            description: 'tls_client_auth with a workload certificate (RFC 8705)',
          } as never,
          serviceBearer: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: "one of the client's own access tokens, audienced to the IdP (RFC 9068)",
          },
          registrationBearer: { type: 'http', scheme: 'bearer', description: 'RFC 7592 registration access token' },
          consoleSession: {
            type: 'apiKey',
            in: 'cookie',
            name: '__Host-lk-console',
            description: "the admin console's session (POST /console/session); `lk-console` over plain HTTP",
          },
          csrfToken: {
            type: 'apiKey',
            in: 'header',
            name: 'x-csrf-token',
            description: "the console session's CSRF token, with the session cookie on every admin call",
          },
        },
      },
    },
    // Shared schemas keep their $id as their component name (OAuthError, AdminError, ClientMetadata).
    refResolver: {
      buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
    transform: ({ schema, url, route }) => {
      const credential = (route.config as { credential?: Credential } | undefined)?.credential ?? 'none';
      const security = SECURITY[credential];
      return { schema: { ...schema, ...(security.length > 0 ? { security } : {}) } as typeof schema, url };
    },
  });
  app.get(
    '/openapi.json',
    {
      config: { credential: 'none' },
      schema: {
        tags: ['discovery'],
        summary: 'this document',
        hide: true,
        response: { 200: Type.Object({}, { additionalProperties: true }) },
      },
    },
    async () => app.swagger(),
  );
}
