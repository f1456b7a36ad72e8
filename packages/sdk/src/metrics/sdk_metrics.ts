import { Counter, Gauge, type Registry } from 'prom-client';
import type { AuditQueue } from '../audit/audit_queue.ts';
import type { Authorizer } from '../authorize/authorizer.ts';
import type { Verifier } from '../verify/verifier.ts';

/** The SDK components whose state the metrics read (any of them). */
export interface LatchkeyMetricsSources {
  verifier?: Pick<Verifier, 'health'>;
  authorizer?: Pick<Authorizer, 'health'>;
  audit?: Pick<AuditQueue, 'pending' | 'dropped' | 'aggregated'>;
  /** Metric name prefix (default `latchkey_sdk`). */
  prefix?: string;
}

/**
 * Registers the SDK's Prometheus metrics in the service's own prom-client `registry` (the one its
 * `/metrics` serves). Every value is read from the components at scrape time: nothing is added to
 * the verification or decision path beyond a counter increment. prom-client is a peer dependency:
 * install it beside the SDK to use this entry point.
 *
 * | metric | type | what |
 * | --- | --- | --- |
 * | `<prefix>_verifications_total{result}` | counter | access-token verifications: `ok` or the VerifyError code |
 * | `<prefix>_jwks_keys`, `<prefix>_jwks_age_seconds` | gauge | keys held; since the JWKS was last fetched |
 * | `<prefix>_revocation_entries` | gauge | revocations held |
 * | `<prefix>_revocation_feed_age_seconds` | gauge | since the revocation feed last answered (the feed's lag bound; -1 before it did) |
 * | `<prefix>_revocation_feed_connected` | gauge | 1 while revocations arrive by push, 0 while polling or starting |
 * | `<prefix>_verified_tokens_cached` | gauge | verified tokens remembered |
 * | `<prefix>_decisions_total{decision}` | counter | authorization decisions, `allow` or `deny` |
 * | `<prefix>_policy_version`, `<prefix>_policy_age_seconds` | gauge | the bundle deciding; since the IdP last confirmed it |
 * | `<prefix>_policy_engine_broken` | gauge | 1 while every decision denies because the engine failed on the bundle |
 * | `<prefix>_decisions_cached` | gauge | decisions remembered |
 * | `<prefix>_audit_pending` | gauge | audit events waiting to be sent |
 * | `<prefix>_audit_dropped_total`, `<prefix>_audit_aggregated_total` | counter | events dropped (a gap the IdP records); decisions counted per interval |
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 * import { registerLatchkeyMetrics } from '@latchkey/sdk/metrics';
 * const registry = new Registry();
 * registerLatchkeyMetrics(registry, { verifier, authorizer, audit });
 * app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
 * ```
 */
export function registerLatchkeyMetrics(registry: Registry, sources: LatchkeyMetricsSources): void {
  const p = sources.prefix ?? 'latchkey_sdk';
  const registers = [registry];
  const gauge = (name: string, help: string, read: () => number | undefined) =>
    new Gauge({
      name: `${p}_${name}`,
      help,
      registers,
      collect() {
        const v = read();
        if (v !== undefined) this.set(v);
      },
    });
  /** A counter whose value is the component's own running total, by label. */
  const total = (name: string, help: string, label: string, read: () => Record<string, number> | undefined) =>
    new Counter({
      name: `${p}_${name}`,
      help,
      labelNames: label ? [label] : [],
      registers,
      collect() {
        const values = read();
        if (!values) return;
        this.reset();
        for (const [k, v] of Object.entries(values)) {
          if (label) this.inc({ [label]: k }, v);
          else this.inc(v);
        }
      },
    });
  const { verifier, authorizer, audit } = sources;
  if (verifier) {
    total(
      'verifications_total',
      'Access-token verifications, by result (ok or the VerifyError code)',
      'result',
      () => verifier.health().verifications,
    );
    gauge('jwks_keys', 'Signing keys held', () => verifier.health().jwks.keys);
    gauge('jwks_age_seconds', 'Seconds since the JWKS was last fetched', () => verifier.health().jwks.ageSeconds ?? -1);
    gauge('revocation_entries', 'Revocation entries held', () => verifier.health().revocations.entries);
    gauge(
      'revocation_feed_age_seconds',
      'Seconds since the revocation feed last answered (-1 before it did): how stale revocations may be',
      () => verifier.health().revocations.ageSeconds ?? -1,
    );
    gauge('revocation_feed_connected', '1 while revocations arrive by push (the stream is open)', () =>
      verifier.health().revocations.feed === 'connected' ? 1 : 0,
    );
    gauge('verified_tokens_cached', 'Verified tokens remembered', () => verifier.health().cachedTokens);
  }
  if (authorizer) {
    total('decisions_total', 'Authorization decisions, by decision', 'decision', () => authorizer.health().decisions);
    gauge('policy_version', 'The policy bundle version deciding', () => authorizer.health().version);
    gauge(
      'policy_age_seconds',
      'Seconds since the IdP last confirmed the policy bundle',
      () => authorizer.health().ageSeconds,
    );
    gauge('policy_engine_broken', '1 while every decision denies because the engine failed on the bundle', () =>
      authorizer.health().engine.broken ? 1 : 0,
    );
    gauge('decisions_cached', 'Decisions remembered', () => authorizer.health().cachedDecisions);
  }
  if (audit) {
    gauge('audit_pending', 'Audit events waiting to be sent', () => audit.pending);
    total(
      'audit_dropped_total',
      'Audit events dropped because the queue was full (the IdP records the gap)',
      '',
      () => ({
        '': audit.dropped,
      }),
    );
    total('audit_aggregated_total', 'Decisions counted per interval instead of sent one by one', '', () => ({
      '': audit.aggregated,
    }));
  }
}
