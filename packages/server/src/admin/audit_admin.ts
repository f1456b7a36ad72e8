import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OAuthError, invalidRequest } from '../errors.ts';
import { readCheckpoints } from '../audit/offline_verify.ts';
import type { AuditCheckpointer } from '../audit/audit_checkpointer.ts';
import type { AuditRetention } from '../audit/audit_retention.ts';
import { verifyAuditChain } from '../audit/audit_chain_verify.ts';
import type { AuditWriter } from '../audit/audit_writer.ts';
import type { KeyRing } from '../keys/key_ring.ts';
import type { AuditFilter, AuditStore } from '../storage/ports.ts';

export interface AuditAdminDeps {
  store: AuditStore;
  keys: Pick<KeyRing, 'publishedKey'>;
  writer: Pick<AuditWriter, 'flush'>;
  checkpointer: Pick<AuditCheckpointer, 'checkpoint'>;
  retention: Pick<AuditRetention, 'prune'>;
  requireAdmin: (request: FastifyRequest) => Promise<void>;
}

const TEXT_FILTERS = ['type', 'actor', 'subject', 'client_id', 'outcome'] as const;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** Admin API over the audit log: query with a cursor, verify the chain, checkpoints. */
export function registerAuditAdmin(app: FastifyInstance, deps: AuditAdminDeps): void {
  app.get('/admin/audit', async (request) => {
    await deps.requireAdmin(request);
    const q = request.query as Record<string, unknown>;
    const filter: AuditFilter = { limit: 100 };
    for (const k of TEXT_FILTERS) {
      const v = q[k];
      if (v === undefined) continue;
      if (typeof v !== 'string' || v.length === 0 || v.length > 256)
        throw invalidRequest(`${k} must be given once, 1 to 256 characters`);
      filter[k] = v;
    }
    for (const k of ['from', 'to'] as const) {
      const v = q[k];
      if (v === undefined) continue;
      if (typeof v !== 'string' || !RFC3339.test(v))
        throw invalidRequest(`${k} must be an RFC 3339 UTC time such as 2026-11-28T10:00:00Z`);
      filter[k] = v;
    }
    for (const k of ['after', 'limit'] as const) {
      const v = q[k];
      if (v === undefined) continue;
      if (typeof v !== 'string' || !/^\d{1,15}$/.test(v)) throw invalidRequest(`${k} must be a non-negative integer`);
      filter[k] = Number(v);
    }
    if (filter.limit < 1 || filter.limit > 1000) throw invalidRequest('limit must be from 1 to 1000');
    const order = q.order;
    if (order !== undefined && order !== 'oldest' && order !== 'newest')
      throw invalidRequest('order must be given once, oldest or newest');
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
  });

  app.get('/admin/audit/verify', async (request) => {
    await deps.requireAdmin(request);
    await deps.writer.flush();
    return verifyAuditChain(deps.store, deps.keys);
  });

  /** The same, also against checkpoints kept outside the database (`latchkey audit verify --checkpoints`). */
  app.post('/admin/audit/verify', { bodyLimit: 16 * 1024 * 1024 }, async (request) => {
    await deps.requireAdmin(request);
    if (!/^application\/json\s*(;|$)/i.test(String(request.headers['content-type'] ?? '')))
      throw new OAuthError('invalid_request', 'the request body must be application/json', 415);
    let external;
    try {
      external = readCheckpoints(JSON.stringify((request.body as { checkpoints?: unknown } | null)?.checkpoints ?? []));
    } catch (err) {
      throw invalidRequest(`checkpoints: ${(err as Error).message}`);
    }
    await deps.writer.flush();
    return verifyAuditChain(deps.store, deps.keys, external);
  });

  app.get('/admin/audit/checkpoints', async (request) => {
    await deps.requireAdmin(request);
    return { checkpoints: await deps.store.listAuditCheckpoints() };
  });

  /** Prunes events recorded before `before` (RFC 3339) now, anchored like the scheduled retention. */
  app.post('/admin/audit/prune', async (request) => {
    await deps.requireAdmin(request);
    const before = (request.query as Record<string, unknown>).before;
    if (typeof before !== 'string' || !RFC3339.test(before))
      throw invalidRequest('before must be given once, an RFC 3339 UTC time such as 2026-11-28T10:00:00Z');
    if (Date.parse(before) > Date.now()) throw invalidRequest('before must not be in the future');
    const r = await deps.retention.prune({ before });
    return { pruned: r.pruned, through_seq: r.throughSeq };
  });

  app.post('/admin/audit/checkpoints', async (request) => {
    await deps.requireAdmin(request);
    await deps.writer.flush();
    const seq = await deps.checkpointer.checkpoint();
    return { seq: seq ?? null };
  });
}
