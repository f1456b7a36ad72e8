import type { ReportedEvent } from '@latchkey/protocol';
import { connectionOf, type IdpConnection } from '../connection/idp_connection.ts';
import { DecisionAggregator } from './decision_aggregator.ts';

/** Options of {@link createAuditQueue}. */
export interface AuditQueueOptions {
  /** The IdP (or give `connection`). */
  issuer?: string;
  /** The connection to the IdP this service's components share ({@link createIdpConnection}). */
  connection?: IdpConnection;
  /** Client credentials (Basic) — or `token`, a function giving a Bearer access token of this service. */
  credentials?: { clientId: string; clientSecret: string };
  token?: () => Promise<string>;
  fetch?: typeof fetch;
  /**
   * Events held at most (default 10,000). Past it, permission decisions are counted per interval
   * (`authz.decisions`, `why: backlog`) and other events are dropped and counted (the IdP records
   * the count as an `audit.gap` event).
   */
  maxQueue?: number;
  /**
   * Allowed decisions sent as their own event per second (default 100, a burst of as many); past
   * it they are counted per interval instead. Denies and decisions of `@sensitive` policies are
   * always their own event. `Infinity` sends every allow on its own.
   */
  allowRate?: number;
  /** Seconds each count of decisions covers (default 10). */
  aggregateInterval?: number;
  /** Distinct counts (principal, outcome, action, resource type, policies) per interval (default 10,000); further ones share an overflow count. */
  maxAggregateRows?: number;
  /** Events per request (default 200, the IdP takes up to 500). */
  batchSize?: number;
  /** Seconds between background sends (default 1). */
  flushInterval?: number;
}

/** What {@link createAuditQueue} returns. */
export interface AuditQueue {
  /** Queues an event; never blocks, never throws. False when the queue was full and the event was dropped. */
  record(event: ReportedEvent): boolean;
  /** Sends what is queued now; failures keep the events queued for the next attempt. */
  flush(): Promise<void>;
  /**
   * Events dropped because the queue was full (never a permission decision: those are counted
   * instead), reported to the IdP, which writes the count into the trail (`audit.gap`) and its
   * metrics; and events the IdP refused as invalid.
   */
  readonly dropped: number;
  /** Permission decisions counted into per-interval events instead of sent one by one. */
  readonly aggregated: number;
  readonly rejected: number;
  readonly pending: number;
  /** Stops the background sender after one last flush. */
  close(): Promise<void>;
}

/**
 * A bounded, in-memory queue of audit events (permission decisions) that a service sends to the
 * IdP's `POST /audit/events` in batches in the background. A request never waits on it. Every
 * decision is accounted for: denies and `@sensitive` decisions each as an event, allows each up to
 * `allowRate` per second and counted per `aggregateInterval` past it (per principal, outcome,
 * action, resource type and deciding policies). When the IdP is slow or down, events wait in
 * memory up to `maxQueue`; past it decisions are counted too, and any other event is dropped and
 * its count reported (the IdP records it in the trail as an `audit.gap`).
 *
 * @example
 * ```ts
 * import { createAuditQueue } from '@latchkey/sdk/audit';
 * const audit = createAuditQueue({ issuer: 'https://idp.internal', credentials: { clientId: 'orders', clientSecret } });
 * audit.record({ type: 'authz.decision', outcome: 'failure', actor: 'Service::"checkout"', target: 'Order::"42"', reason: 'no permit' });
 * ```
 */
export function createAuditQueue(options: AuditQueueOptions): AuditQueue {
  if (!options.connection && !options.credentials === !options.token)
    throw new TypeError('give a connection, or exactly one of credentials and token');
  const conn = connectionOf(options);
  const f = conn.fetch;
  const maxQueue = options.maxQueue ?? 10_000;
  const batchSize = Math.min(options.batchSize ?? 200, 500);
  let queue: ReportedEvent[] = [];
  let dropped = 0;
  // Dropped since the last accepted batch: the IdP counts them per service (a metric).
  let unreported = 0;
  let rejected = 0;
  let sending: Promise<void> | undefined;
  const allowRate = options.allowRate ?? 100;
  let allowance = allowRate;
  let allowanceAt = Date.now();
  /** One allowed decision may go as its own event (a token bucket of `allowRate` per second). */
  const takeAllowance = (): boolean => {
    if (allowRate === Number.POSITIVE_INFINITY) return true;
    const now = Date.now();
    allowance = Math.min(allowRate, allowance + ((now - allowanceAt) / 1000) * allowRate);
    allowanceAt = now;
    if (allowance < 1) return false;
    allowance--;
    return true;
  };
  const maxRows = options.maxAggregateRows ?? 10_000;
  const counts = new DecisionAggregator({
    intervalMs: (options.aggregateInterval ?? 10) * 1000,
    maxRows,
    maxPending: maxRows,
    now: Date.now,
  });
  const authorization = (): Promise<string> => conn.authorization();

  const sendAll = async (): Promise<void> => {
    counts.roll();
    while (queue.length > 0 || counts.waiting > 0) {
      const own = queue.slice(0, batchSize);
      const counted = counts.peek(batchSize - own.length);
      const batch = [...own, ...counted];
      const report = unreported;
      let res: Response;
      try {
        res = await f(`${conn.issuer}/audit/events`, {
          method: 'POST',
          headers: { authorization: await authorization(), 'content-type': 'application/json' },
          body: JSON.stringify(report > 0 ? { events: batch, dropped: report } : { events: batch }),
        });
        await res.arrayBuffer();
      } catch {
        return; // unreachable: keep the batch for the next attempt
      }
      if (res.status >= 500 || res.status === 429 || res.status === 401) return;
      // Accepted, or refused as invalid (4xx): either way it leaves the queue.
      queue = queue.slice(own.length);
      counts.shift(counted.length);
      if (res.status !== 202) rejected += batch.length;
      else unreported -= report;
    }
  };

  const flush = (): Promise<void> => {
    sending ??= sendAll().finally(() => (sending = undefined));
    return sending;
  };
  const timer = setInterval(() => void flush(), (options.flushInterval ?? 1) * 1000);
  timer.unref();

  return {
    record(event) {
      if (event.type === 'authz.decision') {
        const own = event.outcome === 'failure' || event.detail?.sensitive === true || takeAllowance();
        if (!own) counts.add(event, 'rate');
        else if (queue.length >= maxQueue) counts.add(event, 'backlog');
        else queue.push(event);
        return true;
      }
      if (queue.length >= maxQueue) {
        dropped++;
        unreported++;
        return false;
      }
      queue.push(event);
      return true;
    },
    flush,
    get dropped() {
      return dropped;
    },
    get rejected() {
      return rejected;
    },
    get aggregated() {
      return counts.counted;
    },
    get pending() {
      return queue.length;
    },
    async close() {
      clearInterval(timer);
      await sending;
      counts.roll(true);
      await flush();
    },
  };
}
