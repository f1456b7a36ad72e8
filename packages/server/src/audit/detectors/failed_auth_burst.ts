import type { AuditRecord } from '../../storage/ports.ts';
import { eventMs, type Detector, type Finding } from './types.ts';
import { WindowCounter } from './window_counter.ts';

const TYPES = new Set(['client.auth_failed', 'admin.auth_failed']);

/**
 * Failed-authentication bursts: brute force against one client, and password spraying or
 * credential stuffing from one source address (many ids tried, each a few times). Counted per
 * client id and per source address: `threshold` failures within `windowSeconds`.
 */
export function failedAuthBurst(options: { threshold: number; windowSeconds: number }): Detector {
  const perClient = new WindowCounter(options.threshold, options.windowSeconds * 1000);
  const perAddress = new WindowCounter(options.threshold, options.windowSeconds * 1000);
  return {
    name: 'failed_auth_burst',
    observe(e: AuditRecord): Finding[] {
      if (!TYPES.has(e.type) || e.outcome !== 'failure') return [];
      const out: Finding[] = [];
      const at = eventMs(e);
      const weight = e.detail?.aggregated === true && typeof e.detail.count === 'number' ? e.detail.count : 1;
      const target = e.type === 'admin.auth_failed' ? 'admin' : e.client_id;
      if (target !== undefined) {
        const b = perClient.add(target, at, e.seq, e.source_ip, weight);
        if (b) {
          out.push({
            detector: 'failed_auth_burst',
            severity: 'high',
            key: `client:${target}`,
            summary: `${b.count} failed authentications for ${target === 'admin' ? 'the admin API' : `client "${target}"`} within ${options.windowSeconds}s`,
            ...(target !== 'admin' ? { clientId: target } : {}),
            firstSeq: b.firstSeq,
            lastSeq: e.seq,
            count: b.count,
            detail: { source_ips: b.tags, last_reason: e.reason ?? null },
          });
        }
      }
      if (e.source_ip !== undefined) {
        const b = perAddress.add(e.source_ip, at, e.seq, target ?? '(none)', weight);
        if (b) {
          out.push({
            detector: 'failed_auth_burst',
            severity: 'high',
            key: `ip:${e.source_ip}`,
            summary: `${b.count} failed authentications from ${e.source_ip} within ${options.windowSeconds}s, for ${b.tags.length} distinct client id(s)`,
            firstSeq: b.firstSeq,
            lastSeq: e.seq,
            count: b.count,
            detail: { client_ids: b.tags, last_reason: e.reason ?? null },
          });
        }
      }
      return out;
    },
  };
}
