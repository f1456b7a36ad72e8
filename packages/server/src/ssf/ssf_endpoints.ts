import {
  SECURITY_EVENT_TYPES,
  SSF_DELIVERY,
  SSF_SCOPE,
  type SetPollResponse,
  type SsfStreamStatus,
} from '@latchkey/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { OAuthError } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import { AnyObject, oauthErrors, Open } from '../http/schemas.ts';
import type { ClientStore, SsfStore, SsfStreamRecord } from '../storage/ports.ts';
import type { ReceiverSupplied, SsfStreams } from './ssf_streams.ts';
import type { SsfTransmitter } from './ssf_transmitter.ts';

export interface SsfEndpointDeps {
  issuer: string;
  streams: SsfStreams;
  transmitter: Pick<SsfTransmitter, 'direct'>;
  store: Pick<SsfStore, 'queuedSets' | 'removeQueuedSets' | 'listSsfStreams'>;
  clients: Pick<ClientStore, 'getClient'>;
  events: ServerEvents;
  /** Longest a poll without `returnImmediately` waits for a SET (RFC 8936 §2.1 long polling), seconds. */
  pollWait: number;
  /** Resolves when SETs were queued (this replica's), or after `ms`. */
  queued: (ms: number) => Promise<void>;
}

const StreamQuery = Type.Object(
  { stream_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) },
  {
    additionalProperties: false,
  },
);
const StreamConfig = Open(
  {
    stream_id: Type.String(),
    iss: Type.String(),
    aud: Type.Union([Type.String(), Type.Array(Type.String())]),
    events_supported: Type.Array(Type.String()),
    events_requested: Type.Array(Type.String()),
    events_delivered: Type.Array(Type.String()),
    delivery: Open({ method: Type.String(), endpoint_url: Type.Optional(Type.String()) }),
  },
  'SSF 1.0 §8.1.1 stream configuration',
);
const Status = Type.Object({
  stream_id: Type.String(),
  status: Type.Union([Type.Literal('enabled'), Type.Literal('paused'), Type.Literal('disabled')]),
  reason: Type.Optional(Type.String()),
});
const Empty = Type.Null({ description: 'no content' });
const tags = ['shared signals'];

/**
 * OpenID Shared Signals Framework 1.0: the transmitter's configuration (§7) for anyone, and for
 * receivers — registered clients granted the `ssf` scope, by client authentication or a token of
 * theirs with that scope — the stream management API (§8: configuration, status, subjects,
 * verification) and RFC 8936 polling. A receiver sees and changes its own streams only.
 */
export function registerSsfConfiguration(app: FastifyInstance, deps: { issuer: string }): void {
  const i = deps.issuer;
  app.get(
    '/.well-known/ssf-configuration',
    {
      config: { credential: 'none' },
      schema: {
        tags,
        summary: 'SSF 1.0 §7.1 transmitter configuration metadata',
        response: { 200: Open({ issuer: Type.String(), jwks_uri: Type.String() }) },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return {
        spec_version: '1_0',
        issuer: i,
        jwks_uri: `${i}/jwks`,
        delivery_methods_supported: [SSF_DELIVERY.push, SSF_DELIVERY.poll],
        configuration_endpoint: `${i}/ssf/stream`,
        status_endpoint: `${i}/ssf/status`,
        add_subject_endpoint: `${i}/ssf/subjects/add`,
        remove_subject_endpoint: `${i}/ssf/subjects/remove`,
        verification_endpoint: `${i}/ssf/verify`,
        // §7.1.1: receivers get access tokens with client credentials (RFC 6749), scope `ssf`.
        authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
        default_subjects: 'ALL',
      };
    },
  );
}

export function registerSsfEndpoints(app: FastifyInstance, deps: SsfEndpointDeps): void {
  const { streams, events } = deps;
  const config = { requiredScope: SSF_SCOPE };

  /** The receiver: the authenticated client, if its registration grants it the `ssf` scope. */
  const receiver = async (request: FastifyRequest): Promise<string> => {
    const client = await deps.clients.getClient(request.serviceClientId);
    if (!(client?.metadata.scope ?? '').split(' ').includes(SSF_SCOPE))
      throw new OAuthError('access_denied', `the client is not a Shared Signals receiver (no ${SSF_SCOPE} scope)`, 403);
    return request.serviceClientId;
  };
  const stage =
    (type: 'ssf.stream_created' | 'ssf.stream_updated' | 'ssf.stream_deleted', request: FastifyRequest) =>
    (s: SsfStreamRecord) =>
      events.stage(type, {
        actor: s.clientId,
        subject: `stream:${s.streamId}`,
        client_id: s.clientId,
        outcome: 'success',
        request_id: request.id,
        source_ip: request.ip,
        detail: { stream_id: s.streamId, method: s.method, status: s.status, events: s.eventsRequested.length },
      });
  const noStore = (reply: { header(k: string, v: string): unknown }) => reply.header('cache-control', 'no-store');

  app.post(
    '/ssf/stream',
    {
      config,
      schema: {
        tags,
        summary: 'SSF §8.1.1.1 create a stream (poll delivery unless `delivery` says push)',
        body: AnyObject,
        response: { 201: StreamConfig, ...oauthErrors(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const { stream, event } = await streams.create(
        await receiver(request),
        request.body as ReceiverSupplied,
        stage('ssf.stream_created', request),
      );
      events.committed(event);
      noStore(reply);
      return reply.code(201).send(streams.view(stream));
    },
  );
  app.get(
    '/ssf/stream',
    {
      config,
      schema: {
        tags,
        summary: 'SSF §8.1.1.2 read a stream, or every stream of the receiver without `stream_id`',
        querystring: StreamQuery,
        response: { 200: Type.Union([StreamConfig, Type.Array(StreamConfig)]), ...oauthErrors(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const clientId = await receiver(request);
      const { stream_id } = request.query as { stream_id?: string };
      noStore(reply);
      if (stream_id === undefined) return (await deps.store.listSsfStreams(clientId)).map((s) => streams.view(s));
      return streams.view(await streams.own(clientId, stream_id));
    },
  );
  for (const [method, replace] of [
    ['PATCH', false],
    ['PUT', true],
  ] as const)
    app.route({
      method,
      url: '/ssf/stream',
      config,
      schema: {
        tags,
        summary: replace
          ? 'SSF §8.1.1.4 replace a stream’s configuration'
          : 'SSF §8.1.1.3 update a stream’s configuration',
        body: AnyObject,
        response: { 200: StreamConfig, ...oauthErrors(400, 401, 403, 404) },
      },
      handler: async (request, reply) => {
        const { stream, event } = await streams.change(
          await receiver(request),
          request.body as ReceiverSupplied,
          replace,
          stage('ssf.stream_updated', request),
        );
        events.committed(event);
        noStore(reply);
        return streams.view(stream);
      },
    });
  app.delete(
    '/ssf/stream',
    {
      config,
      schema: {
        tags,
        summary: 'SSF §8.1.1.5 delete a stream (and the SETs waiting in it)',
        querystring: StreamQuery,
        response: { 204: Empty, ...oauthErrors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { event } = await streams.remove(
        await receiver(request),
        (request.query as { stream_id?: string }).stream_id,
        stage('ssf.stream_deleted', request),
      );
      events.committed(event);
      noStore(reply);
      return reply.code(204).send();
    },
  );

  const statusOf = (s: SsfStreamRecord): { stream_id: string; status: SsfStreamStatus; reason?: string } => ({
    stream_id: s.streamId,
    status: s.status,
    ...(s.reason !== null ? { reason: s.reason } : {}),
  });
  app.get(
    '/ssf/status',
    {
      config,
      schema: {
        tags,
        summary: 'SSF §8.1.2.1 a stream’s status (and why, when the transmitter paused it)',
        querystring: StreamQuery,
        response: { 200: Status, ...oauthErrors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      noStore(reply);
      return statusOf(await streams.own(await receiver(request), (request.query as { stream_id?: string }).stream_id));
    },
  );
  app.post(
    '/ssf/status',
    {
      config,
      schema: {
        tags,
        summary: 'SSF §8.1.2.2 enable, pause (SETs are held) or disable (SETs are dropped) a stream',
        body: AnyObject,
        response: { 200: Status, ...oauthErrors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { stream, event } = await streams.setStatus(
        await receiver(request),
        request.body as ReceiverSupplied,
        stage('ssf.stream_updated', request),
      );
      events.committed(event);
      noStore(reply);
      return statusOf(stream);
    },
  );
  for (const [path, included] of [
    ['/ssf/subjects/add', true],
    ['/ssf/subjects/remove', false],
  ] as const)
    app.post(
      path,
      {
        config,
        schema: {
          tags,
          summary: included
            ? 'SSF §8.1.3.2 add a subject: its events are sent (every subject is, until removed)'
            : 'SSF §8.1.3.3 remove a subject: its events are no longer sent',
          body: AnyObject,
          response: { [included ? 200 : 204]: Empty, ...oauthErrors(400, 401, 403, 404) },
        },
      },
      async (request, reply) => {
        await streams.setSubject(await receiver(request), request.body as object, included);
        noStore(reply);
        return reply.code(included ? 200 : 204).send();
      },
    );
  app.post(
    '/ssf/verify',
    {
      config,
      schema: {
        tags,
        summary: 'SSF §8.1.4.2 ask for a verification event on a stream (with your `state`)',
        body: AnyObject,
        response: { 204: Empty, ...oauthErrors(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const body = request.body as { stream_id?: unknown; state?: unknown };
      const stream = await streams.verification(await receiver(request), body);
      await deps.transmitter.direct(stream, {
        type: SECURITY_EVENT_TYPES.verification,
        // §8.1.4.1: the subject of a verification is the stream itself.
        subject: { format: 'opaque', id: stream.streamId },
        event: typeof body.state === 'string' ? { state: body.state } : {},
      });
      return reply.code(204).send();
    },
  );

  app.post(
    '/ssf/poll/:streamId',
    {
      config,
      schema: {
        tags,
        summary: 'RFC 8936 poll a stream: acknowledge SETs, report the ones refused, receive the next ones',
        params: Type.Object({ streamId: Type.String({ minLength: 1, maxLength: 64 }) }),
        body: Type.Object(
          {
            maxEvents: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
            returnImmediately: Type.Optional(Type.Boolean()),
            ack: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 1000 })),
            setErrs: Type.Optional(
              Type.Record(
                Type.String({ maxLength: 64 }),
                Type.Object({ err: Type.String({ maxLength: 64 }), description: Type.String({ maxLength: 1024 }) }),
                { maxProperties: 1000 },
              ),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ sets: Type.Record(Type.String(), Type.String()), moreAvailable: Type.Boolean() }),
          ...oauthErrors(400, 401, 403, 404),
        },
      },
    },
    async (request, reply): Promise<SetPollResponse> => {
      const clientId = await receiver(request);
      const stream = await streams.own(clientId, (request.params as { streamId: string }).streamId);
      if (stream.method !== SSF_DELIVERY.poll)
        throw new OAuthError('invalid_request', 'this stream is delivered by push');
      const body = request.body as {
        maxEvents?: number;
        returnImmediately?: boolean;
        ack?: string[];
        setErrs?: Record<string, { err: string; description: string }>;
      };
      noStore(reply);
      // §2.4: acknowledged SETs, and the ones the receiver refused (reported), are not sent again.
      if (body.ack?.length) await deps.store.removeQueuedSets(stream.streamId, body.ack);
      for (const [jti, e] of Object.entries(body.setErrs ?? {})) {
        if ((await deps.store.removeQueuedSets(stream.streamId, [jti])) === 0) continue;
        await events.emit('ssf.delivery_failed', {
          actor: clientId,
          subject: `stream:${stream.streamId}`,
          client_id: clientId,
          outcome: 'failure',
          reason: e.err,
          detail: {
            stream_id: stream.streamId,
            jti,
            error: `${e.err}: ${e.description}`,
            refused: true,
            paused: false,
            attempts: 1,
          },
        });
      }
      const max = body.maxEvents ?? 100;
      // Paused streams keep their SETs until enabled; disabled ones have none (SSF §8.1.2).
      if (stream.status !== 'enabled') return { sets: {}, moreAvailable: false };
      let waiting = await deps.store.queuedSets(stream.streamId, max + 1);
      const deadline = Date.now() + deps.pollWait * 1000;
      while (waiting.length === 0 && max > 0 && body.returnImmediately !== true && Date.now() < deadline) {
        await deps.queued(Math.min(1000, deadline - Date.now()));
        waiting = await deps.store.queuedSets(stream.streamId, max + 1);
      }
      return {
        sets: Object.fromEntries(waiting.slice(0, max).map((s) => [s.jti, s.set])),
        moreAvailable: waiting.length > max,
      };
    },
  );
}
