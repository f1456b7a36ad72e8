import { type Clock, epochSeconds, startTimer } from '@latchkey/protocol';
import { createHmac } from 'node:crypto';
import type { AlertRecord } from '../storage/ports.ts';
import { OutboundError, type OutboundFetch } from '../http/outbound_fetch.ts';

export interface WebhookSenderOptions {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  urls: readonly string[];
  secret: string;
  /** Attempts per URL; waits 1 s, 2 s, 4 s ... between them (times `baseDelayMs / 1000`). */
  attempts: number;
  baseDelayMs?: number;
  /** The outbound guard (operator URLs: any address, still time- and size-capped, no cross-origin redirects). */
  outbound: Pick<OutboundFetch, 'fetch'>;
  /** Called once per URL that never accepted the alert. */
  onGiveUp: (alert: AlertRecord, url: string, lastError: string) => void;
}

/**
 * `Latchkey-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` — the scheme
 * Stripe and others use, so a receiver checks the body and rejects replays older than it allows.
 */
export function signWebhook(secret: string, body: string, t: number): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/**
 * Delivers each alert to every configured URL as a signed JSON POST, in the background, retrying
 * network errors, 429 and 5xx with exponential backoff. A 2xx is delivered; another 4xx is final.
 * Deliveries live in memory: ones still retrying when the IdP stops are not resumed (the alert
 * itself is stored and in the audit log).
 */
export class WebhookSender {
  private readonly timers = new Set<() => void>();
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  private readonly o: WebhookSenderOptions;

  constructor(o: WebhookSenderOptions) {
    this.o = o;
  }

  send(alert: AlertRecord): void {
    if (this.closed) return;
    const body = JSON.stringify({ type: 'latchkey.alert', alert });
    for (const url of this.o.urls) this.attempt(alert, url, body, 1);
  }

  private attempt(alert: AlertRecord, url: string, body: string, n: number): void {
    const run = (async () => {
      let error: string;
      try {
        const res = await this.o.outbound.fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'latchkey-signature': signWebhook(this.o.secret, body, epochSeconds(this.o.clock)),
            'latchkey-alert-id': String(alert.id),
          },
          body,
          acceptStatus: () => true,
        });
        if (res.status >= 200 && res.status < 300) return;
        error = `HTTP ${res.status}`;
        if (res.status < 500 && res.status !== 429 && res.status !== 408) return this.o.onGiveUp(alert, url, error);
      } catch (err) {
        error =
          err instanceof OutboundError && err.kind === 'timeout'
            ? 'timed out'
            : err instanceof OutboundError && err.kind === 'redirect'
              ? 'redirected'
              : 'unreachable';
      }
      if (n >= this.o.attempts || this.closed) return this.o.onGiveUp(alert, url, error);
      // On the clock's timers: a test advances a fake clock through the backoff instead of waiting.
      const cancel = startTimer(
        this.o.clock,
        () => {
          this.timers.delete(cancel);
          this.attempt(alert, url, body, n + 1);
        },
        (this.o.baseDelayMs ?? 1000) * 2 ** (n - 1),
      );
      this.timers.add(cancel);
    })();
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
  }

  /** Stops retrying; waits for requests already sent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const cancel of this.timers) cancel();
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }
}
