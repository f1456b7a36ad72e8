import { serviceClientId } from '@latchkey/protocol';
import { isAuditEvent } from '@latchkey/protocol/audit-details';
import type { AuditRecord } from '../../storage/ports.ts';
import type { Detector, Finding } from './types.ts';

/**
 * A request for an identity the caller does not own: a client that authenticated as itself but
 * asked in the same request to be another client (`client_id` naming someone else), or an
 * assertion whose issuer is not the `client_id` it came with, a certificate request (CSR)
 * naming another workload's identity, or another workload's certificate presented to
 * authenticate as a `tls_client_auth` client (RFC 8705).
 */
export function identityMismatch(): Detector {
  return {
    name: 'identity_mismatch',
    observe(e: AuditRecord): Finding[] {
      if (isAuditEvent(e, 'certificate.issued') && e.reason === 'identity_not_owned' && e.client_id !== undefined) {
        const asked = e.detail?.requested_other ?? [];
        return [
          {
            detector: 'identity_mismatch',
            severity: 'high',
            key: `client:${e.client_id}`,
            summary: `client "${e.client_id}" asked for a certificate naming ${JSON.stringify(asked[0] ?? 'another identity')}`,
            clientId: e.client_id,
            firstSeq: e.seq,
            lastSeq: e.seq,
            count: 1,
            detail: { requested_other: asked, source_ip: e.source_ip ?? null },
          },
        ];
      }
      if (
        isAuditEvent(e, 'client.auth_failed') &&
        e.reason === 'certificate_mismatch' &&
        e.detail?.presented_spiffe_id !== undefined &&
        e.client_id !== undefined
      ) {
        // The workload that presented its certificate is the one acting out of turn (and the one a lock should hold).
        const presented = e.detail.presented_spiffe_id;
        const presenter = serviceClientId(presented);
        return [
          {
            detector: 'identity_mismatch',
            severity: 'high',
            key: presenter !== undefined ? `client:${presenter}` : `spiffe:${presented}`,
            summary: `the certificate of ${presented} was presented to authenticate as client "${e.client_id}"`,
            ...(presenter !== undefined ? { clientId: presenter } : {}),
            firstSeq: e.seq,
            lastSeq: e.seq,
            count: 1,
            detail: { presented_spiffe_id: presented, target_client_id: e.client_id, source_ip: e.source_ip ?? null },
          },
        ];
      }
      if (!isAuditEvent(e, 'client.auth_failed') || e.reason !== 'client_id_mismatch') return [];
      const claimed = e.detail?.presented_client_id ?? 'another client';
      const who = e.client_id;
      return [
        {
          detector: 'identity_mismatch',
          severity: 'high',
          key: who !== undefined ? `client:${who}` : `ip:${e.source_ip ?? '?'}`,
          summary:
            who !== undefined
              ? `client "${who}" asked to act as "${claimed}"`
              : `a client assertion's issuer did not match the client_id sent with it (from ${e.source_ip ?? '?'})`,
          ...(who !== undefined ? { clientId: who } : {}),
          firstSeq: e.seq,
          lastSeq: e.seq,
          count: 1,
          detail: { presented_client_id: claimed, source_ip: e.source_ip ?? null },
        },
      ];
    },
  };
}
