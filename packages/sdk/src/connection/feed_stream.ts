import { EventSource } from 'eventsource';

/** The streams of `GET /feeds/stream` and the SSE event each carries. */
export type FeedStreamName = 'revocations' | 'keys' | 'policy';
const EVENT: Record<FeedStreamName, string> = { revocations: 'revocation', keys: 'key', policy: 'policy' };

/** One consumer of the shared stream: the streams it wants and what to do with their events. */
export interface FeedListener {
  streams: readonly FeedStreamName[];
  /** Where a newly opened stream starts (the consumer's cursor), when it has one. */
  since?: () => string;
  onOpen?: () => void;
  onError?: () => void;
  /** Called with each event's data (JSON text) by stream. */
  on: Partial<Record<FeedStreamName, (data: string) => void>>;
}

/** The first reconnect after a stream that was open waits up to this long (jittered). */
const FIRST_RETRY_MS = 250;
/** Repeated failures back off, doubling from 1 s to this. */
const MAX_RETRY_MS = 30_000;

/**
 * One Server-Sent Events connection to the IdP's `/feeds/stream`, shared by every consumer of an
 * IdP connection (the verifier's revocations and keys, the authorizer's policy nudges): opened for
 * the union of the streams they want, resumed from the consumers' cursor, and reopened when a
 * consumer asks for a stream it does not carry yet.
 *
 * Reconnection is scheduled here rather than by the `eventsource` package's fixed `retry`: a
 * stream that was open and broke (its IdP replica died or restarted) is reopened within
 * 250 ms, jittered so a replica's subscribers do not return at once, and lands on another replica
 * behind the load balancer; failures in a row back off from 1 s to 30 s (with jitter) so an IdP
 * that is down is not hammered by every service at once.
 *
 * @example
 * ```ts
 * const stop = idp.feed.subscribe({ streams: ['policy'], on: { policy: () => refetchBundle() } });
 * // ... later
 * stop();
 * ```
 */
export class SharedFeedStream {
  private readonly listeners = new Set<FeedListener>();
  private es: EventSource | undefined;
  private carried = '';
  private connected = false;
  /** Failed attempts since the stream was last open. */
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  private readonly o: { issuer: string; fetch: typeof fetch; authorization: () => Promise<string> };

  constructor(o: { issuer: string; fetch: typeof fetch; authorization: () => Promise<string> }) {
    this.o = o;
  }

  /** Adds a consumer; returns the function that removes it (the stream closes with the last one). */
  subscribe(l: FeedListener): () => void {
    this.listeners.add(l);
    const wanted = this.union();
    if ((this.es || this.retry) && wanted === this.carried) {
      if (this.connected) l.onOpen?.();
    } else this.open(wanted);
    return () => {
      this.listeners.delete(l);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** Open SSE connections (0 or 1): what the sharing saves. */
  get connections(): number {
    return this.es ? 1 : 0;
  }

  private union(): string {
    const s = new Set<FeedStreamName>();
    for (const l of this.listeners) for (const x of l.streams) s.add(x);
    return [...s].sort().join(',');
  }

  private open(streams: string): void {
    this.stop();
    // Start from the lowest cursor a consumer holds (events before it are known to everyone).
    const cursors = [...this.listeners]
      .map((l) => l.since?.())
      .filter((c): c is string => c !== undefined)
      .map(Number);
    const since = cursors.length > 0 ? `&since=${Math.min(...cursors)}` : '';
    const es = new EventSource(`${this.o.issuer}/feeds/stream?streams=${streams}${since}`, {
      fetch: async (input, init) =>
        this.o.fetch(input as string, {
          ...init,
          headers: { ...(init?.headers as Record<string, string>), authorization: await this.o.authorization() },
        }),
    });
    this.es = es;
    this.carried = streams;
    es.addEventListener('open', () => {
      this.connected = true;
      this.failures = 0;
      for (const l of this.listeners) l.onOpen?.();
    });
    es.addEventListener('error', () => {
      if (this.es !== es) return;
      this.connected = false;
      // Our schedule, not the package's: close it and reopen from the consumers' cursor.
      es.close();
      this.es = undefined;
      this.failures++;
      const delay =
        this.failures === 1
          ? Math.random() * FIRST_RETRY_MS
          : Math.min(MAX_RETRY_MS, 1000 * 2 ** (this.failures - 2)) * (0.5 + Math.random() / 2);
      this.retry = setTimeout(() => {
        this.retry = undefined;
        if (this.listeners.size > 0) this.open(this.union());
      }, delay);
      this.retry.unref();
      for (const l of this.listeners) l.onError?.();
    });
    for (const name of Object.keys(EVENT) as FeedStreamName[]) {
      es.addEventListener(EVENT[name], (ev) => {
        for (const l of this.listeners) l.on[name]?.((ev as MessageEvent<string>).data);
      });
    }
  }

  private stop(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    this.es?.close();
    this.es = undefined;
    this.carried = '';
    this.connected = false;
  }
}
