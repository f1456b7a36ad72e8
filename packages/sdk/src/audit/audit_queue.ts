import type { ReportedEvent } from '@latchkey/protocol';
import { connectionOf, type IdpConnection } from '../connection/idp_connection.ts';

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
  /** Events held at most; past it new events are dropped and counted (default 10,000). */
  maxQueue?: number;
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
  /** Events dropped because the queue was full (also reported to the IdP, which counts them per service in its metrics), and events the IdP refused as invalid. */
  readonly dropped: number;
  readonly rejected: number;
  readonly pending: number;
  /** Stops the background sender after one last flush. */
  close(): Promise<void>;
}

/**
 * A bounded, in-memory queue of audit events (permission decisions) that a service sends to the
 * IdP's `POST /audit/events` in batches in the background. A request never waits on it: when the
 * IdP is slow or down, events wait in memory up to `maxQueue`, and beyond that are dropped and
 * counted (report `dropped` in health and metrics).
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
  const authorization = (): Promise<string> => conn.authorization();

  const sendAll = async (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue.slice(0, batchSize);
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
      queue = queue.slice(batch.length);
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
    get pending() {
      return queue.length;
    },
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}
