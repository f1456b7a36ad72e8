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

/**
 * One Server-Sent Events connection to the IdP's `/feeds/stream`, shared by every consumer of an
 * IdP connection (the verifier's revocations and keys, the authorizer's policy nudges): opened for
 * the union of the streams they want, resumed with Last-Event-ID by the `eventsource` package, and
 * reopened when a consumer asks for a stream it does not carry yet.
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
  private readonly o: { issuer: string; fetch: typeof fetch; authorization: () => Promise<string> };

  constructor(o: { issuer: string; fetch: typeof fetch; authorization: () => Promise<string> }) {
    this.o = o;
  }

  /** Adds a consumer; returns the function that removes it (the stream closes with the last one). */
  subscribe(l: FeedListener): () => void {
    this.listeners.add(l);
    const wanted = this.union();
    if (this.es && wanted === this.carried) {
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
      for (const l of this.listeners) l.onOpen?.();
    });
    es.addEventListener('error', () => {
      this.connected = false;
      for (const l of this.listeners) l.onError?.();
    });
    for (const name of Object.keys(EVENT) as FeedStreamName[]) {
      es.addEventListener(EVENT[name], (ev) => {
        for (const l of this.listeners) l.on[name]?.((ev as MessageEvent<string>).data);
      });
    }
  }

  private stop(): void {
    this.es?.close();
    this.es = undefined;
    this.carried = '';
    this.connected = false;
  }
}
