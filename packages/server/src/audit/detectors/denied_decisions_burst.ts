import { isAuditEvent } from '@latchkey/protocol/audit-details';
import type { AuditRecord } from '../../storage/ports.ts';
import { eventMs, type Detector, type Finding } from './types.ts';
import { WindowCounter } from './window_counter.ts';

/** `Service::"orders"` → `orders`: the client id of a service principal. */
const SERVICE_PRINCIPAL = /^Service::"([^"\\]{1,128})"$/;

/**
 * Bursts of denied permission decisions for one principal — a service probing what it may do,
 * or moving laterally with a stolen identity. Counted per principal across every reporting
 * service: `threshold` denials within `windowSeconds`.
 */
export function deniedDecisionsBurst(options: { threshold: number; windowSeconds: number }): Detector {
  const perActor = new WindowCounter(options.threshold, options.windowSeconds * 1000);
  return {
    name: 'denied_decisions_burst',
    observe(e: AuditRecord): Finding[] {
      if (e.outcome !== 'failure') return [];
      // Denials counted per interval (a service's queue was full) weigh their count.
      let weight: number;
      if (isAuditEvent(e, 'authz.decision')) weight = 1;
      else if (isAuditEvent(e, 'authz.decisions')) weight = e.detail?.count ?? 1;
      else return [];
      // Decisions are reported by services: the reporter is the client that authenticated the batch.
      const reporter = e.client_id ?? e.detail?.service ?? '?';
      const b = perActor.add(e.actor, eventMs(e), e.seq, reporter, weight);
      if (!b) return [];
      const service = SERVICE_PRINCIPAL.exec(e.actor)?.[1];
      return [
        {
          detector: 'denied_decisions_burst',
          severity: 'medium',
          key: `actor:${e.actor}`,
          summary: `${b.count} denied permission decisions for ${e.actor} within ${options.windowSeconds}s, reported by ${b.tags.join(', ')}`,
          ...(service ? { clientId: service } : {}),
          reportedBy: b.tags,
          firstSeq: b.firstSeq,
          lastSeq: e.seq,
          count: b.count,
          detail: { reported_by: b.tags, target: e.detail?.target ?? null },
        },
      ];
    },
  };
}
