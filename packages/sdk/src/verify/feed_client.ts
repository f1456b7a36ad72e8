import { EventSource } from 'eventsource';
import type { FeedPage, KeyEvent, RevocationEntry } from '@latchkey/protocol';
import type { JwksCache } from './jwks_cache.ts';
import type { RevocationSet } from './revocation_set.ts';

export type FeedState = 'off' | 'starting' | 'connected' | 'polling';

export interface FeedClientOptions {
  issuer: string;
  /** The Authorization value for the feeds (the shared IdP connection's). */
  authorization: () => Promise<string>;
  fetch: typeof fetch;
  pollIntervalMs: number;
  revocations: RevocationSet;
  jwks: JwksCache;
}

/**
 * Keeps the revocation set (and pre-announced keys) fresh: a snapshot on start, then the IdP's
 * SSE stream with Last-Event-ID resume (the `eventsource` package reconnects by itself), and
 * polling with `?since=` and ETag while the stream is down.
 */
export class FeedClient {
  state: FeedState = 'starting';
  /** When the issuer last answered a feed request or stream (ms since epoch). */
  lastContact = 0;
  private es: EventSource | undefined;
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
    return { authorization: await this.o.authorization(), ...extra };
  }

  /** Pages through `/feeds/revocations` from the current cursor. */
  private async catchUp(): Promise<void> {
    for (;;) {
      const res = await this.o.fetch(`${this.o.issuer}/feeds/revocations?since=${this.o.revocations.cursor}`, { headers: await this.headers(this.etag ? { 'if-none-match': this.etag } : {}) });
      if (res.status === 304) {
        this.lastContact = Date.now();
        return;
      }
      if (!res.ok) throw new Error(`revocation feed answered HTTP ${res.status}`);
      const page = (await res.json()) as FeedPage<RevocationEntry>;
      for (const e of page.entries) this.o.revocations.apply(e);
      this.o.revocations.cursor = page.cursor;
      this.lastContact = Date.now();
      if (!page.has_more) {
        this.etag = res.headers.get('etag') ?? undefined;
        return;
      }
    }
  }

  private openStream(): void {
    if (this.closed) return;
    const url = `${this.o.issuer}/feeds/stream?since=${this.o.revocations.cursor}`;
    const es = new EventSource(url, {
      fetch: async (input, init) => this.o.fetch(input as string, { ...init, headers: { ...(init?.headers as Record<string, string>), authorization: await this.o.authorization() } }),
    });
    this.es = es;
    es.addEventListener('open', () => {
      this.state = 'connected';
      this.lastContact = Date.now();
      this.stopPolling();
    });
    es.addEventListener('error', () => {
      if (this.closed) return;
      this.state = 'polling';
      this.startPolling();
    });
    es.addEventListener('revocation', (ev) => {
      this.lastContact = Date.now();
      const e = JSON.parse((ev as MessageEvent<string>).data) as RevocationEntry;
      this.o.revocations.apply(e);
      if (Number(e.cursor) > Number(this.o.revocations.cursor)) this.o.revocations.cursor = e.cursor;
    });
    es.addEventListener('key', (ev) => {
      this.lastContact = Date.now();
      const k = JSON.parse((ev as MessageEvent<string>).data) as KeyEvent;
      if (k.type === 'key.added' && k.jwk) this.o.jwks.add({ ...k.jwk });
      if (k.type === 'key.revoked' || k.type === 'key.removed') this.o.jwks.remove(k.kid);
      if (Number(k.cursor) > Number(this.o.revocations.cursor)) this.o.revocations.cursor = k.cursor;
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
    this.es?.close();
  }
}
