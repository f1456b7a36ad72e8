import type { Clock } from '@latchkey/protocol';
import type { FeedPage, KeyEvent, RevocationEntry } from '@latchkey/protocol';
import type { IdpConnection } from '../connection/idp_connection.ts';
import type { JwksCache } from './jwks_cache.ts';
import type { RevocationSet } from './revocation_set.ts';

export type FeedState = 'off' | 'starting' | 'connected' | 'polling';

export interface FeedClientOptions {
  /** The IdP connection: its fetch, Authorization and shared feed stream. */
  connection: IdpConnection;
  pollIntervalMs: number;
  revocations: RevocationSet;
  jwks: JwksCache;
  clock: Clock;
}

/**
 * Keeps the revocation set (and pre-announced keys) fresh: a snapshot on start, then the IdP
 * connection's shared SSE stream with Last-Event-ID resume, and polling with `?since=` and ETag
 * while the stream is down.
 */
export class FeedClient {
  state: FeedState = 'starting';
  /** When the issuer last answered a feed request or stream (ms since epoch). */
  lastContact = 0;
  private unsubscribe: (() => void) | undefined;
  private poll: NodeJS.Timeout | undefined;
  private etag: string | undefined;
  private closed = false;
  private readonly o: FeedClientOptions;

  constructor(o: FeedClientOptions) {
    this.o = o;
  }

  async start(): Promise<void> {
    await this.catchUp();
    this.openStream();
  }

  private async headers(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    return { authorization: await this.o.connection.authorization(), ...extra };
  }

  /** Pages through `/feeds/revocations` from the current cursor. */
  private async catchUp(): Promise<void> {
    for (;;) {
      const res = await this.o.connection.fetch(
        `${this.o.connection.issuer}/feeds/revocations?since=${this.o.revocations.cursor}`,
        { headers: await this.headers(this.etag ? { 'if-none-match': this.etag } : {}) },
      );
      if (res.status === 304) {
        this.lastContact = this.o.clock.now();
        return;
      }
      if (!res.ok) throw new Error(`revocation feed answered HTTP ${res.status}`);
      const page = (await res.json()) as FeedPage<RevocationEntry>;
      for (const e of page.entries) this.o.revocations.apply(e);
      this.o.revocations.cursor = page.cursor;
      this.lastContact = this.o.clock.now();
      if (!page.has_more) {
        this.etag = res.headers.get('etag') ?? undefined;
        return;
      }
    }
  }

  private openStream(): void {
    if (this.closed) return;
    this.unsubscribe = this.o.connection.feed.subscribe({
      streams: ['revocations', 'keys'],
      since: () => this.o.revocations.cursor,
      onOpen: () => {
        this.state = 'connected';
        this.lastContact = this.o.clock.now();
        this.stopPolling();
      },
      onError: () => {
        if (this.closed) return;
        this.state = 'polling';
        this.startPolling();
      },
      on: {
        revocations: (data) => {
          this.lastContact = this.o.clock.now();
          const e = JSON.parse(data) as RevocationEntry;
          this.o.revocations.apply(e);
          if (Number(e.cursor) > Number(this.o.revocations.cursor)) this.o.revocations.cursor = e.cursor;
        },
        keys: (data) => {
          this.lastContact = this.o.clock.now();
          const k = JSON.parse(data) as KeyEvent;
          if (k.type === 'key.added' && k.jwk) this.o.jwks.add({ ...k.jwk });
          if (k.type === 'key.revoked' || k.type === 'key.removed') this.o.jwks.remove(k.kid);
          if (Number(k.cursor) > Number(this.o.revocations.cursor)) this.o.revocations.cursor = k.cursor;
        },
      },
    });
  }

  private startPolling(): void {
    if (this.poll || this.closed) return;
    this.poll = setInterval(() => void this.catchUp().catch(() => {}), this.o.pollIntervalMs);
    this.poll.unref();
  }

  private stopPolling(): void {
    if (this.poll) clearInterval(this.poll);
    this.poll = undefined;
  }

  close(): void {
    this.closed = true;
    this.state = 'off';
    this.stopPolling();
    this.unsubscribe?.();
  }
}
