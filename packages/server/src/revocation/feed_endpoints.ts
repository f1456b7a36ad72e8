import { type Clock, epochSeconds } from '@latchkey/protocol';
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { FeedPage } from '@latchkey/protocol';
import Type from 'typebox';
import { openEventStream } from '../http/sse.ts';
import { OAuthError, invalidRequest } from '../errors.ts';
import { AnyObject, DecimalString, oauthErrors, typed } from '../http/schemas.ts';
import type { FeedEventRecord, FeedStore, FeedStream } from '../storage/ports.ts';
import type { FeedHub } from './feed_hub.ts';
import { keyEvent, revocationEntry } from './feed_messages.ts';

export interface FeedEndpointsDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  issuer: string;
  store: Pick<FeedStore, 'listFeedEvents' | 'latestFeedSeq'>;
  hub: FeedHub;
  maxPage: number;
}

const CURSOR = /^\d{1,15}$/;

/**
 * The feeds: `GET /feeds/revocations` and `GET /feeds/keys` (a snapshot without `since`, entries
 * after a cursor with it, paged, with ETag), and `GET /feeds/stream` (Server-Sent Events with
 * `id:` cursors, Last-Event-ID resume and heartbeats). Any registered client may read them,
 * authenticated by client_secret_basic or by one of its own access tokens as a Bearer — checked
 * by the service scope these routes are registered in.
 */
export function registerFeedEndpoints(scope: FastifyInstance, deps: FeedEndpointsDeps): void {
  const app = typed(scope);
  const tags = ['feeds'];

  const cursorParam = (value: string | undefined, name: string): number | undefined => {
    if (value === undefined) return undefined;
    if (!CURSOR.test(value)) throw invalidRequest(`${name} must be a cursor from this feed`);
    return Number(value);
  };
  const Cursor = (description: string) => Type.Optional(Type.String({ pattern: CURSOR.source, description }));

  const page = (stream: FeedStream, map: (e: FeedEventRecord) => object) =>
    app.get(
      `/feeds/${stream}`,
      {
        schema: {
          tags,
          summary: `the ${stream} feed: a snapshot without since, the entries after a cursor with it; paged, with an ETag`,
          querystring: Type.Object(
            {
              since: Cursor('a cursor this feed handed out'),
              limit: Type.Optional(DecimalString(`1 to ${deps.maxPage}`, 5)),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({ entries: Type.Array(AnyObject), cursor: Type.String(), has_more: Type.Boolean() }),
            304: Type.Null({ description: 'If-None-Match matched the ETag' }),
            ...oauthErrors(400, 401, 403, 503),
          },
        },
      },
      async (request, reply) => {
        const q = request.query;
        const since = cursorParam(q.since, 'since') ?? 0;
        const limit = q.limit === undefined ? deps.maxPage : Number(q.limit);
        if (limit < 1 || limit > deps.maxPage) throw invalidRequest(`limit must be from 1 to ${deps.maxPage}`);
        // Read the head first: every entry up to it is committed (appends are serialized), so a
        // short page may hand it out as the cursor without skipping anything.
        const head = await deps.store.latestFeedSeq();
        const rows = await deps.store.listFeedEvents(stream, since, limit + 1, epochSeconds(deps.clock));
        const hasMore = rows.length > limit;
        const entries = rows.slice(0, limit);
        const last = entries.length > 0 ? entries[entries.length - 1]!.seq : since;
        const body: FeedPage<object> = {
          entries: entries.map(map),
          cursor: String(hasMore ? last : Math.max(last, head)),
          has_more: hasMore,
        };
        const text = JSON.stringify(body);
        const etag = `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`;
        reply.header('etag', etag).header('cache-control', 'no-cache');
        const inm = request.headers['if-none-match'];
        if (inm?.split(',').some((t) => t.trim() === etag)) return reply.code(304).send(null);
        // The text the ETag was computed over is what is sent.
        return reply
          .type('application/json')
          .serializer(() => text)
          .send(body);
      },
    );
  page('revocations', revocationEntry);
  page('keys', keyEvent);

  app.get(
    '/feeds/stream',
    {
      schema: {
        tags,
        summary:
          'Server-Sent Events: revocations, key lifecycle and policy versions as they happen, resumable by cursor',
        querystring: Type.Object(
          {
            streams: Type.Optional(
              Type.String({
                maxLength: 64,
                description: 'comma-separated: revocations, keys, policy (default revocations,keys)',
              }),
            ),
            since: Cursor('resume after this cursor (Last-Event-ID wins)'),
          },
          { additionalProperties: false },
        ),
        headers: Type.Object({
          'last-event-id': Cursor('the id of the last event received (EventSource resumes with it)'),
        }),
        response: {
          200: { content: { 'text/event-stream': { schema: Type.String() } } },
          ...oauthErrors(400, 401, 403, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const clientId = request.serviceClientId;
      const q = request.query;
      const streams = new Set((q.streams ?? 'revocations,keys').split(','));
      for (const s of streams)
        if (s !== 'revocations' && s !== 'keys' && s !== 'policy')
          throw invalidRequest('streams is a comma-separated list of revocations, keys and policy');
      const lastEventId = request.headers['last-event-id'];
      const resume = cursorParam(lastEventId ?? q.since, lastEventId !== undefined ? 'Last-Event-ID' : 'since');
      // Without a cursor the stream starts at the head: take a snapshot first, then stream from its cursor.
      const cursor = resume ?? (await deps.store.latestFeedSeq());
      reply.hijack();
      const res = reply.raw;
      const result = deps.hub.subscribe(clientId, streams as Set<FeedStream>, cursor, res);
      if (!result.ok) {
        const err = new OAuthError(
          'invalid_request',
          result.reason === 'client_limit' ? 'too many open streams for this client' : 'too many open streams',
          429,
        );
        res
          .writeHead(429, { 'content-type': 'application/json', 'retry-after': '5', 'cache-control': 'no-store' })
          .end(JSON.stringify(err.toJSON()));
        return;
      }
      openEventStream(res, cursor);
    },
  );
}
