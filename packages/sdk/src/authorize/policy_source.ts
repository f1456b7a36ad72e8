import type { Clock } from '@latchkey/protocol';
import type { PolicyBundle } from '@latchkey/protocol';
import type { IdpConnection } from '../connection/idp_connection.ts';

export interface PolicySourceOptions {
  /** The IdP connection: its fetch, Authorization and shared feed stream. */
  connection: IdpConnection;
  /** Seconds between ETag polls (a safety net under the stream). */
  pollInterval: number;
  onBundle: (bundle: PolicyBundle) => void;
  onError: (err: unknown) => void;
  clock: Clock;
}

/**
 * Keeps the policy bundle fresh: `GET /feeds/policy` with its ETag, again whenever a `policy`
 * event arrives on the IdP's stream, and on a timer in case the stream is down. A failed fetch
 * keeps the bundle it has (fail-static).
 */
export class PolicySource {
  private etag: string | undefined;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  /** When the IdP last answered (ms since epoch). */
  lastContact = 0;
  private readonly o: PolicySourceOptions;

  constructor(o: PolicySourceOptions) {
    this.o = o;
  }

  async start(): Promise<void> {
    await this.fetchBundle();
    this.openStream();
    this.timer = setInterval(() => this.refresh(), this.o.pollInterval * 1000);
    this.timer.unref();
  }

  /** Fetches now (folding concurrent triggers into one more fetch). */
  refresh(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.fetchBundle()
      .catch(this.o.onError)
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.refresh();
        }
      });
  }

  private async fetchBundle(): Promise<void> {
    const c = this.o.connection;
    const res = await c.fetch(`${c.issuer}/feeds/policy`, {
      headers: { authorization: await c.authorization(), ...(this.etag ? { 'if-none-match': this.etag } : {}) },
    });
    if (res.status === 304) {
      this.lastContact = this.o.clock.now();
      return;
    }
    if (!res.ok) {
      await res.arrayBuffer().catch(() => undefined);
      throw new Error(`policy feed answered HTTP ${res.status}`);
    }
    const bundle = (await res.json()) as PolicyBundle;
    this.lastContact = this.o.clock.now();
    this.etag = res.headers.get('etag') ?? undefined;
    this.o.onBundle(bundle);
  }

  private openStream(): void {
    if (this.closed) return;
    this.unsubscribe = this.o.connection.feed.subscribe({
      streams: ['policy'],
      onOpen: () => {
        this.lastContact = this.o.clock.now();
        this.refresh(); // a version may have been published while the stream was down
      },
      on: { policy: () => this.refresh() },
    });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
  }
}
