import type { AuditEvent } from '@latchkey/protocol';
import type { AuditStore } from '@latchkey/server';

/**
 * The newest `limit` (default 1000) audit events, optionally of one `type`, oldest first and
 * without their chain fields: what a test compares against the events it expects.
 */
export async function auditEvents(
  store: Pick<AuditStore, 'queryAuditEvents'>,
  options: { type?: string; limit?: number } = {},
): Promise<AuditEvent[]> {
  const rows = await store.queryAuditEvents({ type: options.type, limit: options.limit ?? 1000, newest: true });
  return rows.map(({ seq: _seq, prevHash: _prev, hash: _hash, ...event }) => event);
}
