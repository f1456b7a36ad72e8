import type { Clock } from '@latchkey/protocol';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { validationFailed } from '../errors.ts';
import { readCheckpoints } from '../audit/offline_verify.ts';
import type { AuditCheckpointer } from '../audit/audit_checkpointer.ts';
import type { AuditRetention } from '../audit/audit_retention.ts';
import { verifyAuditChain } from '../audit/audit_chain_verify.ts';
import type { AuditWriter } from '../audit/audit_writer.ts';
import { adminErrors, AnyObject, DecimalString, Nullable, OptionalBody, Rfc3339, typed } from '../http/schemas.ts';
import type { KeyRing } from '../keys/key_ring.ts';
import type { AuditFilter, AuditStore } from '../storage/ports.ts';

export interface AuditAdminDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  store: AuditStore;
  keys: Pick<KeyRing, 'publishedKey'>;
  writer: Pick<AuditWriter, 'flush'>;
  checkpointer: Pick<AuditCheckpointer, 'checkpoint'>;
  retention: Pick<AuditRetention, 'prune'>;
}

const Text = (description: string) => Type.Optional(Type.String({ minLength: 1, maxLength: 256, description }));
const AuditQuery = Type.Object(
  {
    type: Text('event type, e.g. token.issued'),
    actor: Text('who acted'),
    subject: Text('whom it is about'),
    client_id: Text('the client involved'),
    outcome: Text('success or failure'),
    txn: Text("a transaction: a Transaction Token's txn (exchanges and services' decisions)"),
    from: Type.Optional(Rfc3339('recorded at or after (RFC 3339 UTC)')),
    to: Type.Optional(Rfc3339('recorded at or before (RFC 3339 UTC)')),
    after: Type.Optional(DecimalString('cursor: events after this seq')),
    limit: Type.Optional(DecimalString('1 to 1000 (default 100)', 4)),
    order: Type.Optional(
      Type.Enum(['oldest', 'newest'], { description: 'newest: the newest page (still oldest first)' }),
    ),
  },
  { additionalProperties: false },
);
const AuditRecord = Type.Object({
  seq: Type.Integer(),
  prevHash: Nullable(Type.String()),
  hash: Nullable(Type.String()),
  time: Type.String(),
  type: Type.String(),
  outcome: Type.Enum(['success', 'failure']),
  actor: Type.String(),
  subject: Type.Optional(Type.String()),
  client_id: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  request_id: Type.Optional(Type.String()),
  source_ip: Type.Optional(Type.String()),
  detail: Type.Optional(AnyObject),
});
const Checkpoint = Type.Object({
  seq: Type.Integer(),
  hash: Type.String(),
  time: Type.String(),
  kid: Type.String(),
  signature: Type.String({ description: 'compact JWS over {seq, hash, time, iss}' }),
});
const Counts = Type.Object({ total: Type.Integer(), verified: Type.Integer(), unverifiable: Type.Integer() });
const ChainReport = Type.Object({
  ok: Type.Boolean(),
  checked: Type.Integer(),
  head: Nullable(Type.Object({ seq: Type.Integer(), hash: Type.String() })),
  prunedThrough: Type.Optional(Type.Integer()),
  firstBad: Type.Optional(Type.Object({ seq: Type.Integer(), problem: Type.String() })),
  checkpoints: Counts,
  external: Type.Optional(Counts),
});
const tags = ['admin: audit'];

/** Admin API over the audit log: query with a cursor, verify the chain, checkpoints. */
export function registerAuditAdmin(scope: FastifyInstance, deps: AuditAdminDeps): void {
  const app = typed(scope);
  app.get(
    '/admin/audit',
    {
      schema: {
        tags,
        querystring: AuditQuery,
        response: {
          200: Type.Object({ events: Type.Array(AuditRecord), cursor: Type.String(), has_more: Type.Boolean() }),
          ...adminErrors(400),
        },
      },
    },
    async (request) => {
      const { after, limit, order, ...text } = request.query;
      const filter: AuditFilter = { ...text, limit: limit === undefined ? 100 : Number(limit) };
      if (after !== undefined) filter.after = Number(after);
      if (filter.limit < 1 || filter.limit > 1000) throw validationFailed('limit must be from 1 to 1000');
      // `order=newest`: the newest `limit` matches (still oldest first), where `audit tail` starts.
      if (order === 'newest') filter.newest = true;
      // Events recorded just before the query are visible to it.
      await deps.writer.flush();
      const rows = await deps.store.queryAuditEvents({ ...filter, limit: filter.limit + 1 });
      // The newest page reaches the head: nothing more after it (yet).
      const events = filter.newest ? rows.slice(-filter.limit) : rows.slice(0, filter.limit);
      return {
        events,
        cursor: String(events.length > 0 ? events[events.length - 1]!.seq : (filter.after ?? 0)),
        has_more: !filter.newest && rows.length > filter.limit,
      };
    },
  );

  app.get('/admin/audit/verify', { schema: { tags, response: { 200: ChainReport, ...adminErrors() } } }, async () => {
    await deps.writer.flush();
    return verifyAuditChain(deps.store, deps.keys);
  });

  /** The same, also against checkpoints kept outside the database (`latchkey audit verify --checkpoints`). */
  app.post(
    '/admin/audit/verify',
    {
      bodyLimit: 16 * 1024 * 1024,
      schema: {
        tags,
        body: OptionalBody(
          Type.Object(
            {
              checkpoints: Type.Optional(
                Type.Array(Checkpoint, { description: 'checkpoints kept outside the database' }),
              ),
            },
            { additionalProperties: false },
          ),
        ),
        response: { 200: ChainReport, ...adminErrors(400, 413, 415) },
      },
    },
    async (request) => {
      let external: ReturnType<typeof readCheckpoints>;
      try {
        external = readCheckpoints(JSON.stringify(request.body?.checkpoints ?? []));
      } catch (err) {
        throw validationFailed(`checkpoints: ${(err as Error).message}`);
      }
      await deps.writer.flush();
      return verifyAuditChain(deps.store, deps.keys, external);
    },
  );

  app.get(
    '/admin/audit/checkpoints',
    { schema: { tags, response: { 200: Type.Object({ checkpoints: Type.Array(Checkpoint) }), ...adminErrors() } } },
    async () => ({ checkpoints: await deps.store.listAuditCheckpoints() }),
  );

  /** Prunes events recorded before `before` (RFC 3339) now, anchored like the scheduled retention. */
  app.post(
    '/admin/audit/prune',
    {
      schema: {
        tags,
        querystring: Type.Object(
          { before: Rfc3339('prune events recorded before this time') },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ pruned: Type.Integer(), through_seq: Nullable(Type.Integer()) }),
          ...adminErrors(400),
        },
      },
    },
    async (request) => {
      const { before } = request.query;
      if (Date.parse(before) > deps.clock.now()) throw validationFailed('before must not be in the future');
      const r = await deps.retention.prune({ before });
      return { pruned: r.pruned, through_seq: r.throughSeq };
    },
  );

  app.post(
    '/admin/audit/checkpoints',
    { schema: { tags, response: { 200: Type.Object({ seq: Nullable(Type.Integer()) }), ...adminErrors() } } },
    async () => {
      await deps.writer.flush();
      const seq = await deps.checkpointer.checkpoint();
      return { seq: seq ?? null };
    },
  );
}
