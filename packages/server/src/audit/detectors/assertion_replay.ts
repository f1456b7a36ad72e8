import type { AuditRecord } from '../../storage/ports.ts';
import type { Detector, Finding } from './types.ts';

/**
 * Client-assertion replay (RFC 7523 §3 item 7): a private_key_jwt assertion presented a second
 * time. A real client never reuses a jti, so each replay means the assertion was captured.
 */
export function assertionReplay(): Detector {
  return {
    name: 'assertion_replay',
    observe(e: AuditRecord): Finding[] {
      if (e.type !== 'client.auth_failed' || e.reason !== 'assertion_replayed' || e.client_id === undefined) return [];
      return [
        {
          detector: 'assertion_replay',
          severity: 'high',
          key: `client:${e.client_id}`,
          summary: `a client assertion of "${e.client_id}" was replayed from ${e.source_ip ?? 'an unknown address'}`,
          clientId: e.client_id,
          firstSeq: e.seq,
          lastSeq: e.seq,
          count: 1,
          detail: { source_ip: e.source_ip ?? null },
        },
      ];
    },
  };
}
