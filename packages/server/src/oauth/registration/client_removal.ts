import type { AuditEvent } from '@latchkey/protocol';
import type { ServerEvents } from '../../events.ts';
import type { RevocationLog } from '../../revocation/revocation_log.ts';

/**
 * Stops every token of a client at every service, then changes its row (disables or deletes it):
 * the client not-before entry goes on the feed first, with the change's audit event, so a crash
 * between the two leaves the tokens revoked everywhere and repeating the request finishes the job.
 * Used by the admin API's revoke and delete and by RFC 7592 DELETE.
 */
export async function revokeClientThen(
  deps: { revocations: Pick<RevocationLog, 'revokeNotBefore'>; events: Pick<ServerEvents, 'committed'> },
  clientId: string,
  event: AuditEvent,
  change: () => Promise<unknown>,
): Promise<void> {
  await deps.revocations.revokeNotBefore('client', clientId, [event]);
  deps.events.committed(event);
  await change();
}
