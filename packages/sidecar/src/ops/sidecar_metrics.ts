import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Latency buckets in seconds: local verification and decisions take microseconds to a millisecond. */
const FAST = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05];

/** The sidecar's Prometheus metrics, in a registry of its own (served at /metrics). */
export class SidecarMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'latchkey_sidecar_requests_total',
    help: 'Requests checked, by mode, route and outcome (allowed, public, denied, invalid_token, ...)',
    labelNames: ['mode', 'route', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly verifySeconds = new Histogram({
    name: 'latchkey_sidecar_verify_seconds',
    help: 'Time to verify a bearer token locally',
    buckets: FAST,
    registers: [this.registry],
  });
  readonly decideSeconds = new Histogram({
    name: 'latchkey_sidecar_decide_seconds',
    help: 'Time for a local Cedar decision',
    buckets: FAST,
    registers: [this.registry],
  });
  readonly checkErrors = new Counter({
    name: 'latchkey_sidecar_check_errors_total',
    help: 'Checks that failed inside the sidecar and were denied (fail closed)',
    registers: [this.registry],
  });
  readonly upstreamErrors = new Counter({
    name: 'latchkey_sidecar_upstream_errors_total',
    help: 'Proxied requests the upstream did not answer (refused, reset, timed out)',
    registers: [this.registry],
  });

  /** Gauges read at scrape time from the SDK components' health. */
  gauges(read: () => Record<string, number>): void {
    const names: Record<string, string> = {
      jwks_age: 'Seconds since the JWKS was last fetched',
      revocations_age: 'Seconds since the revocation feed last answered',
      revocation_entries: 'Revocation entries held',
      policy_age: 'Seconds since the policy bundle was last confirmed',
      policy_version: 'The policy bundle version deciding',
      audit_pending: 'Audit events waiting to be sent',
      audit_dropped: 'Audit events dropped because the queue was full',
      ready: '1 when keys, revocations and policies are fresh enough to decide',
      feed_pushed: '1 while revocations arrive by push (the SSE stream is open), 0 while polling or starting',
    };
    for (const [key, help] of Object.entries(names)) {
      new Gauge({
        name: `latchkey_sidecar_${key}`,
        help,
        registers: [this.registry],
        collect() {
          const v = read()[key];
          if (v !== undefined) this.set(v);
        },
      });
    }
  }
}
