import type { AuditRecord } from '../../storage/ports.ts';
import { eventMs, type Detector, type Finding } from './types.ts';

/** Weight of the newest window in the baseline (an exponentially weighted moving average). */
const ALPHA = 0.3;

interface ClientState {
  bucket: number;
  count: number;
  firstSeq: number;
  /** Average tokens per window so far; undefined until one whole window was seen. */
  baseline: number | undefined;
  alerted: boolean;
}

/**
 * A client's token issuance far above its own recent baseline (a leaked secret used at scale, a
 * runaway deployment). Tokens are counted per client in windows of `windowSeconds`; the baseline
 * is a moving average of past windows, empty ones included. A window alerts once, when its count
 * passes both `factor` × baseline and `min` (so a quiet client doing a little more does not).
 */
export function issuanceSpike(options: {
  factor: number;
  windowSeconds: number;
  min: number;
  maxClients?: number;
}): Detector {
  const clients = new Map<string, ClientState>();
  const maxClients = options.maxClients ?? 50_000;
  return {
    name: 'issuance_spike',
    observe(e: AuditRecord): Finding[] {
      if (e.type !== 'token.issued' || e.outcome !== 'success' || e.client_id === undefined) return [];
      const bucket = Math.floor(eventMs(e) / (options.windowSeconds * 1000));
      let s = clients.get(e.client_id);
      if (!s) {
        if (clients.size >= maxClients) clients.delete(clients.keys().next().value as string);
        s = { bucket, count: 0, firstSeq: e.seq, baseline: undefined, alerted: false };
        clients.set(e.client_id, s);
      } else if (bucket > s.bucket) {
        // Close the finished window, then decay through the empty ones in between.
        s.baseline = s.baseline === undefined ? s.count : ALPHA * s.count + (1 - ALPHA) * s.baseline;
        s.baseline *= (1 - ALPHA) ** Math.min(bucket - s.bucket - 1, 100);
        s.bucket = bucket;
        s.count = 0;
        s.firstSeq = e.seq;
        s.alerted = false;
      }
      s.count++;
      if (s.alerted || s.count <= options.min) return [];
      const limit = s.baseline === undefined ? 0 : options.factor * s.baseline;
      if (s.count <= limit) return [];
      s.alerted = true;
      return [
        {
          detector: 'issuance_spike',
          severity: 'medium',
          key: `client:${e.client_id}`,
          summary: `client "${e.client_id}" got ${s.count} tokens within ${options.windowSeconds}s; its baseline is ${s.baseline === undefined ? 'not yet known' : s.baseline.toFixed(1)}`,
          clientId: e.client_id,
          firstSeq: s.firstSeq,
          lastSeq: e.seq,
          count: s.count,
          detail: { window_seconds: options.windowSeconds, baseline: s.baseline ?? null, factor: options.factor },
        },
      ];
    },
  };
}
