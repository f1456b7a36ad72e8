import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { openEventStream } from '../http/sse.ts';
import { AdminError } from '../errors.ts';
import { adminErrors, DecimalString, typed } from '../http/schemas.ts';
import type { AuditFilter, AuditStore } from '../storage/ports.ts';
import type { AuditWriter } from './audit_writer.ts';

export interface AuditStreamDeps {
  store: Pick<AuditStore, 'queryAuditEvents' | 'auditHead' | 'onAuditAppended'>;
  writer: Pick<AuditWriter, 'flush'>;
  /** Streams open at once on this replica (each reads the database while it lives). */
  maxStreams?: number;
  /** How often to look for events other replicas wrote (ms); this replica's wake the streams at once. */
  pollMs?: number;
  heartbeatMs?: number;
}

const Text = (description: string) => Type.Optional(Type.String({ minLength: 1, maxLength: 256, description }));

/**
 * GET /admin/audit/stream: the audit trail as it is written, as Server-Sent Events (`event:
 * audit`, `id:` the seq, `data:` the event as `GET /admin/audit` returns it). Without a cursor it
 * starts at the head; `after` or Last-Event-ID resume. This replica's own appends wake the streams
 * at once; other replicas' are read every `pollMs`. `latchkey audit tail` and the console's live
 * tail use it.
 */
export function registerAuditStream(scope: FastifyInstance, deps: AuditStreamDeps): void {
  const maxStreams = deps.maxStreams ?? 64;
  const pollMs = deps.pollMs ?? 1000;
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const waiters = new Set<() => void>();
  const streams = new Set<import('node:http').ServerResponse>();
  deps.store.onAuditAppended(() => {
    for (const wake of waiters) wake();
  });
  // Open streams would keep the server from closing: end them first (readers resume by seq).
  scope.addHook('preClose', (done) => {
    for (const res of streams) res.end();
    done();
  });

  typed(scope).get(
    '/admin/audit/stream',
    {
      schema: {
        tags: ['admin: audit'],
        summary: 'Server-Sent Events: audit events as they are written, resumable by seq',
        querystring: Type.Object(
          {
            type: Text('event type, e.g. token.issued'),
            client_id: Text('the client involved'),
            outcome: Text('success or failure'),
            after: Type.Optional(DecimalString('resume after this seq (Last-Event-ID wins)')),
          },
          { additionalProperties: false },
        ),
        headers: Type.Object({ 'last-event-id': Type.Optional(DecimalString('the seq of the last event received')) }),
        response: { 200: { content: { 'text/event-stream': { schema: Type.String() } } }, ...adminErrors(400, 409) },
      },
    },
    async (request, reply) => {
      if (waiters.size >= maxStreams) throw new AdminError('conflict', `at most ${maxStreams} audit streams at once`);
      const { after, ...text } = request.query;
      const resume = request.headers['last-event-id'] ?? after;
      await deps.writer.flush();
      let cursor = resume !== undefined ? Number(resume) : ((await deps.store.auditHead())?.seq ?? 0);
      reply.hijack();
      const res = reply.raw;
      openEventStream(res, cursor);
      let open = true;
      let wake: () => void = () => {};
      const waiter = () => wake();
      waiters.add(waiter);
      streams.add(res);
      const heartbeat = setInterval(() => res.write(': keepalive\n\n'), heartbeatMs);
      heartbeat.unref();
      res.on('close', () => {
        open = false;
        waiters.delete(waiter);
        streams.delete(res);
        clearInterval(heartbeat);
        wake();
      });
      while (open) {
        // A reader that stopped reading: end its stream rather than buffer the trail for it.
        if (res.writableLength > 4 * 1024 * 1024) {
          res.destroy();
          break;
        }
        try {
          const filter: AuditFilter = { ...text, after: cursor, limit: 500 };
          const rows = await deps.store.queryAuditEvents(filter);
          for (const e of rows) res.write(`event: audit\nid: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`);
          if (rows.length > 0) cursor = rows[rows.length - 1]!.seq;
          if (rows.length === 500) continue;
        } catch {
          // Storage unavailable: keep the stream and try again on the next wake.
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pollMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
  );
}
