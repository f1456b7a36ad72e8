import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { ServerResponse } from 'node:http';
import type { FeedStore, FeedStream } from '../storage/ports.ts';
import { coalesce } from '../coalesce.ts';
import { sseFrame } from './feed_messages.ts';
import { tracer } from '../tracing.ts';

export interface FeedHubOptions {
  heartbeatSeconds: number;
  maxStreamsPerClient: number;
  maxStreams: number;
  /**
   * A subscriber whose socket has made no progress for this long is disconnected (it resumes by
   * cursor). Measured in heartbeat ticks as well as wall time, so a replica whose own event loop
   * was busy (a GC pause, a burst of appends) never blames its subscribers for it.
   */
  stallSeconds: number;
  /**
   * Seconds after which a stream is ended (each at its own moment between 75% and 100% of it, so
   * they do not all return at once); its subscriber reconnects through the load balancer and
   * resumes from its cursor, so streams spread over replicas that started since. 0: never.
   */
  maxStreamAgeSeconds?: number;
  clock: Clock;
  onError?: (err: unknown) => void;
}

interface Subscriber {
  clientId: string;
  streams: ReadonlySet<FeedStream>;
  cursor: number;
  res: ServerResponse;
  /** Set while the socket is full: nothing more is written until it drains. */
  pausedAt: number | undefined;
  /** Bytes still queued on the socket at the last heartbeat tick, and ticks since any of them left. */
  queued: number;
  stalledTicks: number;
  /** When it is ended so that its subscriber reconnects (ms since epoch), if ever. */
  endsAt: number | undefined;
}

export type SubscribeResult =
  | { ok: true; unsubscribe: () => void }
  | { ok: false; reason: 'client_limit' | 'total_limit' };

const PAGE = 500;

/**
 * Fans feed entries out to the Server-Sent Event streams of this replica. Every append — here, or
 * at another replica when storage is PostgreSQL (LISTEN/NOTIFY) — wakes it; one query per page
 * serves every subscriber that is up to date, and each subscriber keeps its own cursor, so a
 * resumed stream replays exactly what it missed, in order. Nothing is buffered in the hub: when
 * a subscriber's socket is full it is paused — its cursor stays put and it catches up from
 * storage once the socket drains — so at most one page waits per subscriber; one that stays full
 * longer than `stallSeconds` is disconnected and resumes from its cursor when it reconnects.
 */
export class FeedHub {
  private readonly subscribers = new Set<Subscriber>();
  /** Open streams per client (counted, not searched: a fleet's streams come in thousands). */
  private readonly perClient = new Map<string, number>();
  /** Schedules a pump; pokes during a pump coalesce into one more pass. */
  readonly poke: () => void;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unlisten: () => void;
  private readonly store: Pick<FeedStore, 'listFeedEvents' | 'onFeedAppended'>;
  private readonly options: FeedHubOptions;

  constructor(store: Pick<FeedStore, 'listFeedEvents' | 'onFeedAppended'>, options: FeedHubOptions) {
    this.store = store;
    this.options = options;
    this.poke = coalesce(
      () => this.pump(),
      (err) => this.options.onError?.(err),
    );
    this.unlisten = store.onFeedAppended(() => this.poke());
    const tick = Math.min(options.heartbeatSeconds, options.stallSeconds);
    const ticksToStall = Math.ceil(options.stallSeconds / tick);
    this.heartbeat = setInterval(() => {
      const now = this.options.clock.now();
      for (const s of this.subscribers) {
        if (s.endsAt !== undefined && now >= s.endsAt) {
          this.end(s);
          continue;
        }
        if (s.pausedAt === undefined) {
          this.write(s, ': keep-alive\n\n');
          continue;
        }
        // Paused: a socket whose queue shrank since the last tick is a slow reader, not a stalled one.
        const queued = s.res.socket?.writableLength ?? 0;
        if (queued < s.queued) s.stalledTicks = 0;
        else s.stalledTicks++;
        s.queued = queued;
        if (s.stalledTicks >= ticksToStall && now - s.pausedAt > this.options.stallSeconds * 1000) this.drop(s);
      }
    }, tick * 1000);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.subscribers.size;
  }

  /** The lowest cursor an open stream has been sent up to (undefined with none open): the feed's lag at this replica. */
  get oldestCursor(): number | undefined {
    let min: number | undefined;
    for (const s of this.subscribers) if (min === undefined || s.cursor < min) min = s.cursor;
    return min;
  }

  /** Attaches an open SSE response; it receives every entry after `cursor` on the named streams. */
  subscribe(clientId: string, streams: ReadonlySet<FeedStream>, cursor: number, res: ServerResponse): SubscribeResult {
    if (this.subscribers.size >= this.options.maxStreams) return { ok: false, reason: 'total_limit' };
    const mine = this.perClient.get(clientId) ?? 0;
    if (mine >= this.options.maxStreamsPerClient) return { ok: false, reason: 'client_limit' };
    const age = this.options.maxStreamAgeSeconds ?? 0;
    const sub: Subscriber = {
      clientId,
      streams,
      cursor,
      res,
      pausedAt: undefined,
      queued: 0,
      stalledTicks: 0,
      endsAt: age > 0 ? this.options.clock.now() + age * 1000 * (0.75 + Math.random() / 4) : undefined,
    };
    this.subscribers.add(sub);
    this.perClient.set(clientId, mine + 1);
    const unsubscribe = () => this.forget(sub);
    res.on('close', unsubscribe);
    this.poke();
    return { ok: true, unsubscribe };
  }

  private async pump(): Promise<void> {
    for (;;) {
      const active = [...this.subscribers].filter((s) => s.pausedAt === undefined);
      if (active.length === 0) return;
      const from = Math.min(...active.map((s) => s.cursor));
      const page = await this.store.listFeedEvents('all', from, PAGE, epochSeconds(this.options.clock));
      if (page.length === 0) return;
      const last = page[page.length - 1]!.seq;
      const span = tracer.startSpan('latchkey.feed.deliver', {
        attributes: { 'latchkey.feed.entries': page.length, 'latchkey.feed.last_seq': last },
      });
      // Each entry's frame once, not once per subscriber (10,000 streams share it).
      const frames = page.map(sseFrame);
      let streams = 0;
      for (const s of active) {
        if (s.cursor >= last || s.pausedAt !== undefined) continue;
        let out = '';
        for (let i = 0; i < page.length; i++) {
          const e = page[i]!;
          if (e.seq > s.cursor && s.streams.has(e.stream)) out += frames[i];
        }
        s.cursor = last;
        if (out) {
          this.write(s, out);
          streams++;
        }
      }
      span.setAttribute('latchkey.feed.streams', streams);
      span.end();
      // A revoked, deleted or locked client loses its open streams with the entry that says so
      // (every replica sees the entry and ends its own); it cannot authenticate to reopen them.
      for (const e of page) {
        if (e.stream !== 'revocations' || e.kind !== 'client') continue;
        for (const s of this.subscribers) if (s.clientId === e.ref) this.end(s);
      }
      if (page.length < PAGE) return;
    }
  }

  private write(s: Subscriber, text: string): void {
    if (s.res.destroyed) {
      this.forget(s);
      return;
    }
    if (!s.res.write(text)) {
      // The socket is full: stop here and pick up from the cursor when it drains.
      s.pausedAt = this.options.clock.now();
      s.queued = s.res.socket?.writableLength ?? 0;
      s.stalledTicks = 0;
      s.res.once('drain', () => {
        s.pausedAt = undefined;
        this.poke();
      });
    }
  }

  private end(s: Subscriber): void {
    this.forget(s);
    s.res.end();
  }

  private drop(s: Subscriber): void {
    this.forget(s);
    s.res.destroy();
  }

  /** Takes a subscriber out (once: `close` and an explicit end may both come). */
  private forget(s: Subscriber): void {
    if (!this.subscribers.delete(s)) return;
    const n = (this.perClient.get(s.clientId) ?? 1) - 1;
    if (n > 0) this.perClient.set(s.clientId, n);
    else this.perClient.delete(s.clientId);
  }

  /** Ends every stream (at shutdown, so in-flight requests can finish). */
  close(): void {
    clearInterval(this.heartbeat);
    this.unlisten();
    for (const s of this.subscribers) s.res.end();
    this.subscribers.clear();
    this.perClient.clear();
  }
}
