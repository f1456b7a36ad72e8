import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { FeedPage } from '@latchkey/protocol';
import { OAuthError, invalidRequest } from '../errors.ts';
import type { serviceCaller } from '../oauth/service_caller.ts';
import type { FeedEventRecord, FeedStore, FeedStream } from '../storage/ports.ts';
import type { FeedHub } from './feed_hub.ts';
import { keyEvent, revocationEntry } from './feed_messages.ts';

export interface FeedEndpointsDeps {
  issuer: string;
  store: Pick<FeedStore, 'listFeedEvents' | 'latestFeedSeq'>;
  hub: FeedHub;
  /** The registered client calling (client authentication or one of its own access tokens). */
  caller: ReturnType<typeof serviceCaller>;
  maxPage: number;
}

const CURSOR = /^\d{1,15}$/;

/**
 * The feeds: `GET /feeds/revocations` and `GET /feeds/keys` (a snapshot without `since`, entries
 * after a cursor with it, paged, with ETag), and `GET /feeds/stream` (Server-Sent Events with
 * `id:` cursors, Last-Event-ID resume and heartbeats). Any registered client may read them,
 * authenticated by client_secret_basic or by one of its own access tokens as a Bearer.
 */
export function registerFeedEndpoints(app: FastifyInstance, deps: FeedEndpointsDeps): void {
  const { caller } = deps;

  const cursorParam = (value: unknown, name: string): number | undefined => {
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !CURSOR.test(value))
      throw invalidRequest(`${name} must be a cursor from this feed`);
    return Number(value);
  };

  const page = (stream: FeedStream, map: (e: FeedEventRecord) => unknown) =>
    app.get(`/feeds/${stream}`, async (request, reply) => {
      await caller(request);
      const q = request.query as Record<string, unknown>;
      const since = cursorParam(q.since, 'since') ?? 0;
      const limitRaw = q.limit === undefined ? String(deps.maxPage) : q.limit;
      if (
        typeof limitRaw !== 'string' ||
        !/^\d{1,5}$/.test(limitRaw) ||
        Number(limitRaw) < 1 ||
        Number(limitRaw) > deps.maxPage
      ) {
        throw invalidRequest(`limit must be from 1 to ${deps.maxPage}`);
      }
      const limit = Number(limitRaw);
      // Read the head first: every entry up to it is committed (appends are serialized), so a
      // short page may hand it out as the cursor without skipping anything.
      const head = await deps.store.latestFeedSeq();
      const rows = await deps.store.listFeedEvents(stream, since, limit + 1, Math.floor(Date.now() / 1000));
      const hasMore = rows.length > limit;
      const entries = rows.slice(0, limit);
      const last = entries.length > 0 ? entries[entries.length - 1]!.seq : since;
      const body: FeedPage<unknown> = {
        entries: entries.map(map),
        cursor: String(hasMore ? last : Math.max(last, head)),
        has_more: hasMore,
      };
      const text = JSON.stringify(body);
      const etag = `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`;
      reply.header('etag', etag).header('cache-control', 'no-cache');
      const inm = request.headers['if-none-match'];
      if (inm !== undefined && inm.split(',').some((t) => t.trim() === etag)) return reply.code(304).send();
      return reply.type('application/json').send(text);
    });
  page('revocations', revocationEntry);
  page('keys', keyEvent);

  app.get('/feeds/stream', async (request, reply) => {
    const clientId = await caller(request);
    const q = request.query as Record<string, unknown>;
    const streamsRaw = q.streams === undefined ? 'revocations,keys' : q.streams;
    if (typeof streamsRaw !== 'string') throw invalidRequest('streams must be given once');
    const streams = new Set(streamsRaw.split(','));
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
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    // retry: how long EventSource clients wait before reconnecting; the first comment opens the stream.
    res.write(`retry: 2000\n: cursor ${cursor}\n\n`);
  });
}
