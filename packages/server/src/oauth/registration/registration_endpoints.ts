import { actorOf } from '../../admin/admin_token.ts';
import { revokeThen } from '../../revocation/revoke_then.ts';
import { type Clock, epochSeconds } from '@latchkey/protocol';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { ClientIdParams, Open, oauthErrors, ref, typed } from '../../http/schemas.ts';
import { LatchkeyError, OAuthError } from '../../errors.ts';
import { aboutClient, type ServerEvents } from '../../events.ts';
import { invalidToken, requireBearer } from '../../http/bearer.ts';
import { hashSecret, newSecret, verifySecret } from '../../secrets.ts';
import type { RevocationLog } from '../../revocation/revocation_log.ts';
import type { ClientRecord, ClientStore } from '../../storage/ports.ts';
import { CLIENT_ID_PATTERN, usesSecret, validateClientMetadata, withTlsSubject } from './client_metadata.ts';
import { selfUpdate } from './metadata_rules.ts';

export interface RegistrationDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  issuer: string;
  clients: ClientStore;
  hashKey: Buffer;
  events: ServerEvents;
  maxAccessTokenTtl: number;
  /** The default token lifetime, the ceiling for a client that never had one of its own. */
  accessTokenTtl: number;
  allowHttpJwksUri: boolean;
  revocations: Pick<RevocationLog, 'revokeNotBefore'>;
  /** The SPIFFE ID of a client (its workload certificates' only name; tls_client_auth subject). */
  spiffeIdOf: (clientId: string) => string;
}

/** The metadata members of a client as RFC 7591 §3.2.1 / RFC 7592 §3 return them. */
export function clientInformation(
  issuer: string,
  c: ClientRecord,
): ClientRecord['metadata'] & { client_id: string; client_id_issued_at: number; registration_client_uri: string } {
  return {
    client_id: c.clientId,
    client_id_issued_at: c.createdAt,
    ...c.metadata,
    registration_client_uri: `${issuer}/register/${encodeURIComponent(c.clientId)}`,
  };
}

const newClientId = (): string => randomBytes(12).toString('base64url');

/** What RFC 7591 §3.2.1 and RFC 7592 §3 answer: the client information, and the credentials when new. */
const ClientInformation = Open(
  {
    client_id: Type.String(),
    client_id_issued_at: Type.Integer(),
    registration_client_uri: Type.String(),
    client_secret: Type.Optional(Type.String({ description: 'shown once, when it is issued' })),
    client_secret_expires_at: Type.Optional(Type.Integer()),
    registration_access_token: Type.Optional(Type.String({ description: 'RFC 7592: rotates on every update' })),
  },
  'RFC 7591 §3.2.1 client information response: the metadata members, the id and the credentials',
);
/** RFC 7591 §3.2.2: a body that fails the schema is invalid_client_metadata, not invalid_request. */
const metadataBody = { schemaError: 'invalid_client_metadata' } as const;
const tags = ['registration (RFC 7591, RFC 7592)'];

/** POST /register (RFC 7591): in the admin scope, since the initial access token is the admin bearer (§3). */
export function registerClientRegistration(scope: FastifyInstance, deps: RegistrationDeps): void {
  const limits = { maxAccessTokenTtl: deps.maxAccessTokenTtl, allowHttpJwksUri: deps.allowHttpJwksUri };
  typed(scope).post(
    '/register',
    {
      config: metadataBody,
      schema: {
        tags,
        body: ref('ClientMetadata'),
        response: { 201: ClientInformation, ...oauthErrors(400, 401, 413, 415, 503) },
      },
    },
    async (request, reply) => {
      const body = request.body as Record<string, unknown>;
      let clientId = newClientId();
      if (body.client_id !== undefined) {
        if (typeof body.client_id !== 'string' || !CLIENT_ID_PATTERN.test(body.client_id)) {
          throw new OAuthError(
            'invalid_client_metadata',
            'client_id must be 3-64 characters of a-z, 0-9, ".", "_" or "-"',
          );
        }
        clientId = body.client_id;
      }
      const metadata = withTlsSubject(validateClientMetadata(body, limits), deps.spiffeIdOf(clientId));
      const secret = usesSecret(metadata) ? newSecret() : undefined;
      const registrationToken = newSecret();
      const now = epochSeconds(deps.clock);
      const record: ClientRecord = {
        clientId,
        metadata,
        secretHash: secret ? hashSecret(deps.hashKey, secret) : null,
        registrationTokenHash: hashSecret(deps.hashKey, registrationToken),
        createdAt: now,
        updatedAt: now,
        disabled: false,
        lockedUntil: null,
      };
      const event = deps.events.stage('client.registered', {
        ...aboutClient(actorOf(request), clientId, request),
        detail: { method: metadata.token_endpoint_auth_method },
      });
      try {
        await deps.clients.createClient(record, [event]);
      } catch (err) {
        if (err instanceof LatchkeyError && err.code === 'storage_conflict')
          throw new OAuthError('invalid_client_metadata', 'client_id is already in use');
        throw err;
      }
      deps.events.committed(event);
      // RFC 7591 §3.2.1: 201 with the metadata, the secret (shown this once) and the RFC 7592 credentials.
      return reply
        .code(201)
        .headers({ 'cache-control': 'no-store', pragma: 'no-cache' })
        .send({
          ...clientInformation(deps.issuer, record),
          ...(secret ? { client_secret: secret, client_secret_expires_at: 0 } : {}),
          registration_access_token: registrationToken,
        });
    },
  );
}

/** The RFC 7592 client configuration endpoint: read, update, delete with the registration access token. */
export function registerClientConfiguration(scope: FastifyInstance, deps: RegistrationDeps): void {
  const app = typed(scope);
  const limits = { maxAccessTokenTtl: deps.maxAccessTokenTtl, allowHttpJwksUri: deps.allowHttpJwksUri };
  const config = { credential: 'registration' } as const;
  /** RFC 7592 §3: the registration access token authorizes access to exactly one client. */
  const authorize = async (request: FastifyRequest, clientId: string): Promise<ClientRecord> => {
    const token = requireBearer(request);
    const client = await deps.clients.getClient(clientId);
    // The token is checked whether or not the client exists, so the two cost the same.
    const valid = verifySecret(deps.hashKey, token, client?.registrationTokenHash ?? null);
    if (!client || !valid) {
      // §2: unknown client or wrong token both answer 401, so ids cannot be probed.
      throw invalidToken('the registration access token is not valid for this client');
    }
    return client;
  };

  app.get(
    '/register/:clientId',
    {
      config,
      schema: { tags, params: ClientIdParams, response: { 200: ClientInformation, ...oauthErrors(401, 503) } },
    },
    async (request, reply) => {
      const client = await authorize(request, request.params.clientId);
      return reply.header('cache-control', 'no-store').send(clientInformation(deps.issuer, client));
    },
  );

  app.put(
    '/register/:clientId',
    {
      config: { ...config, ...metadataBody },
      schema: {
        tags,
        params: ClientIdParams,
        body: ref('ClientMetadata'),
        response: { 200: ClientInformation, ...oauthErrors(400, 401, 413, 415, 503) },
      },
    },
    async (request, reply) => {
      const client = await authorize(request, request.params.clientId);
      const body = request.body as Record<string, unknown>;
      // RFC 7592 §2.2: the body carries the client_id, which must match; a secret, if sent, must match too.
      if (body.client_id !== client.clientId)
        throw new OAuthError('invalid_request', 'client_id in the body must match the client');
      if (
        body.client_secret !== undefined &&
        (typeof body.client_secret !== 'string' || !verifySecret(deps.hashKey, body.client_secret, client.secretHash))
      ) {
        throw new OAuthError('invalid_request', 'client_secret does not match');
      }
      // What the client may change about itself is decided member by member (METADATA_RULES).
      const validated = withTlsSubject(validateClientMetadata(body, limits), deps.spiffeIdOf(client.clientId));
      const metadata = selfUpdate(
        client.metadata,
        validated,
        new Set(Object.keys(body).filter((k) => body[k] !== undefined && body[k] !== null)),
        deps.accessTokenTtl,
      );
      // A client moving to a secret-based method without one gets a new secret, shown once.
      const secret = usesSecret(metadata) && client.secretHash === null ? newSecret() : undefined;
      // RFC 7592 §3: the registration access token rotates on every update; the old one stops working.
      const registrationToken = newSecret();
      const updated: ClientRecord = {
        ...client,
        metadata,
        secretHash: usesSecret(metadata) ? (secret ? hashSecret(deps.hashKey, secret) : client.secretHash) : null,
        registrationTokenHash: hashSecret(deps.hashKey, registrationToken),
        updatedAt: epochSeconds(deps.clock),
      };
      const event = deps.events.stage('client.updated', {
        ...aboutClient(client.clientId, client.clientId, request),
      });
      if (!(await deps.clients.updateClient(updated, [event]))) throw invalidToken('the client no longer exists');
      deps.events.committed(event);
      return reply.header('cache-control', 'no-store').send({
        ...clientInformation(deps.issuer, updated),
        ...(secret ? { client_secret: secret, client_secret_expires_at: 0 } : {}),
        registration_access_token: registrationToken,
      });
    },
  );

  app.delete(
    '/register/:clientId',
    { config, schema: { tags, params: ClientIdParams, response: { 204: Type.Null(), ...oauthErrors(401, 503) } } },
    async (request, reply) => {
      const client = await authorize(request, request.params.clientId);
      const event = deps.events.stage('client.deleted', {
        ...aboutClient(client.clientId, client.clientId, request),
      });
      await revokeThen(deps, 'client', client.clientId, event, () => deps.clients.deleteClient(client.clientId));
      return reply.code(204).send(null);
    },
  );
}
