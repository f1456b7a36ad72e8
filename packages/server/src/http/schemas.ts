import { ADMIN_ERROR_CODES, OAUTH_ERROR_CODES } from '@latchkey/protocol';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import Type, { type TSchema } from 'typebox';
import { ClientMetadataSchema } from '../oauth/registration/client_metadata.ts';

/**
 * Schemas shared by the routes. Fastify validates requests with them (ajv: no type coercion, no
 * silent removal of unknown members), serializes responses with them, and @fastify/swagger
 * makes the OpenAPI document from them.
 */

/** RFC 6749 §5.2 error body (and RFC 6750, 7591, 8707 codes). */
export const OAuthErrorBody = Type.Object(
  {
    error: Type.Enum(OAUTH_ERROR_CODES),
    error_description: Type.Optional(Type.String()),
  },
  { $id: 'OAuthError', description: 'RFC 6749 §5.2 error response' },
);

/** The admin API's error body (docs/errors.md). */
export const AdminErrorBody = Type.Object(
  {
    error: Type.Enum([
      ...ADMIN_ERROR_CODES,
      'invalid_token',
      'invalid_client_metadata',
      'temporarily_unavailable',
    ] as const),
    error_description: Type.String(),
    errors: Type.Optional(
      Type.Array(
        Type.Object(
          { message: Type.String() },
          {
            additionalProperties: true,
            description: 'a request problem {in, path, message}, or a Cedar problem {source, line, column, message}',
          },
        ),
      ),
    ),
    warnings: Type.Optional(Type.Array(Type.Object({ message: Type.String() }, { additionalProperties: true }))),
  },
  { $id: 'AdminError', description: 'admin API error response' },
);

/** Registers the shared schemas (they become `components.schemas` in the OpenAPI document). */
export function addSharedSchemas(app: FastifyInstance): void {
  app.addSchema(OAuthErrorBody);
  app.addSchema(AdminErrorBody);
  app.addSchema(ClientMetadataSchema);
}

export const ref = (id: string): TSchema => ({ $ref: `${id}#` }) as unknown as TSchema;

/** Error responses of an OAuth or service route, by status. */
export const oauthErrors = (...statuses: number[]): Record<number, TSchema> =>
  Object.fromEntries(statuses.map((s) => [s, ref('OAuthError')]));

/** Error responses of an admin route: 401 (bearer) and 503 always, plus `statuses`. */
export const adminErrors = (...statuses: number[]): Record<number, TSchema> =>
  Object.fromEntries([401, 503, ...statuses].map((s) => [s, ref('AdminError')]));

/** A non-negative integer given as a query string parameter, once. */
export const DecimalString = (description: string, maxDigits = 15) =>
  Type.String({ pattern: `^\\d{1,${maxDigits}}$`, description });

/** RFC 3339 UTC time as the audit log writes it. */
export const Rfc3339 = (description: string) =>
  Type.String({ pattern: '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z$', description });

/** An object whose listed members are described; others pass through as they are. */
export const Open = <P extends Record<string, TSchema>>(properties: P, description?: string) =>
  Type.Object(properties, { additionalProperties: true, ...(description ? { description } : {}) });

/** A JSON object with members of any kind. */
export const AnyObject = Type.Object({}, { additionalProperties: true });

export const ClientIdParams = Type.Object({ clientId: Type.String({ minLength: 1, maxLength: 255 }) });

/** The app with request and reply types inferred from the route schemas. */
export const typed = (app: FastifyInstance) => app.withTypeProvider<TypeBoxTypeProvider>();

/** A value or null. */
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** A JSON body that may be left out: Fastify validates a missing body as null. */
export const OptionalBody = Nullable;
