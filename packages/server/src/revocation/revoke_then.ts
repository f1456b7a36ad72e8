import type { AuditEvent } from '@latchkey/protocol';
import type { ServerEvents } from '../events.ts';
import type { RevocationLog } from './revocation_log.ts';

/**
 * Stops every token of a client or subject issued until now at every service (a not-before entry
 * on the revocation feed, written with the change's audit event), then makes the change (disable,
 * delete, a new password): a crash between the two leaves the tokens revoked everywhere, and
 * repeating the request finishes the job. Returns the feed cursor of the entry.
 */
export async function revokeThen(
  deps: { revocations: Pick<RevocationLog, 'revokeNotBefore'>; events: Pick<ServerEvents, 'committed'> },
  kind: 'client' | 'subject',
  ref: string,
  event: AuditEvent,
  change?: () => Promise<unknown>,
): Promise<number> {
  const cursor = await deps.revocations.revokeNotBefore(kind, ref, [event]);
  deps.events.committed(event);
  await change?.();
  return cursor;
}
