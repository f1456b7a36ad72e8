import { type Clock, SET_DELIVERY_ERRORS, SET_MEDIA_TYPE, SSF_DELIVERY } from '@latchkey/protocol';
import { Leadership, Passes } from '../passes.ts';
import { OutboundError, type OutboundFetch } from '../http/outbound_fetch.ts';
import type { MasterKey } from '../keys/master_key.ts';
import type { LeaseStore, QueuedSetRecord, SsfStore, SsfStreamRecord } from '../storage/ports.ts';

const LEASE = 'ssf-push';
/** Longest wait between two attempts at one SET. */
const MAX_BACKOFF_SECONDS = 300;

/** Why a SET was not delivered, as reported (`ssf.delivery_failed`). */
export interface DeliveryFailure {
  stream: SsfStreamRecord;
  set: QueuedSetRecord;
  error: string;
  attempts: number;
  /** The receiver refused the SET itself (RFC 8935 §2.3): it was dropped, not retried. */
  refused: boolean;
  /** Retries ran out: the stream was paused with the SET still first in line. */
  paused: boolean;
}

export interface SsfPushDeliveryDeps {
  clock: Clock;
  store: Pick<SsfStore, 'listSsfStreams' | 'queuedSets' | 'removeQueuedSets' | 'deferQueuedSet' | 'updateSsfStream'> &
    Pick<LeaseStore, 'tryLease'>;
  outbound: Pick<OutboundFetch, 'fetch'>;
  master: Pick<MasterKey, 'open'>;
  /** Attempts at one SET before the stream is paused. */
  maxAttempts: number;
  /** Seconds of the first wait after a failed attempt (doubling after each). */
  retryBase: number;
  onFailure: (f: DeliveryFailure) => Promise<void>;
  onError: (err: unknown) => void;
}

/**
 * RFC 8935 push delivery of each push stream's SETs, one at a time and in order, by one replica at
 * a time (a lease): `POST` with `Content-Type: application/secevent+jwt`. A 2xx answer (202 by the
 * RFC) delivers it; a 400 means the receiver refused that SET (§2.3: `err` says why) — it is dropped
 * and reported, never resent; anything else (a network error, 5xx, 401/403, a timeout) is retried
 * with a doubling wait, and when the attempts run out the stream is paused with its SETs kept, the
 * failure reported, and a stream-updated event queued (SSF §8.1.5) for when the receiver enables it.
 */
export class SsfPushDelivery {
  private readonly deps: SsfPushDeliveryDeps;
  private readonly passes: Passes;
  private readonly leadership: Leadership;

  constructor(deps: SsfPushDeliveryDeps) {
    this.deps = deps;
    this.passes = new Passes(() => this.passOnce(), deps.onError, { nudgeDelayMs: 0 });
    this.leadership = new Leadership({ store: deps.store, name: LEASE, holdMs: 10_000, clock: deps.clock });
  }

  /** A pass now (after SETs were queued). */
  readonly nudge = (): void => this.passes.nudge();

  /** Retries fall due on their own: look every second. */
  start(): void {
    this.passes.start(1000);
  }

  stop(): Promise<void> {
    return this.passes.stop();
  }

  pass(): Promise<void> {
    return this.passes.pass();
  }

  private async passOnce(): Promise<void> {
    const streams = (await this.deps.store.listSsfStreams()).filter(
      (s) => s.method === SSF_DELIVERY.push && s.status === 'enabled',
    );
    // The lease is a write: taken only when there is something to push.
    if (streams.length === 0 || !(await this.leadership.leads())) return;
    await Promise.all(streams.map((s) => this.deliver(s)));
  }

  /** The stream's SETs in order, until one has to wait. */
  private async deliver(stream: SsfStreamRecord): Promise<void> {
    const { store, clock } = this.deps;
    for (;;) {
      const batch = await store.queuedSets(stream.streamId, 20);
      if (batch.length === 0) return;
      for (const set of batch) {
        if (this.passes.stopped || set.nextAttemptAt > clock.now()) return;
        const outcome = await this.post(stream, set);
        if (outcome.ok) {
          await store.removeQueuedSets(stream.streamId, [set.jti]);
          continue;
        }
        const attempts = set.attempts + 1;
        if (outcome.refused) {
          await store.removeQueuedSets(stream.streamId, [set.jti]);
          await this.deps.onFailure({ stream, set, error: outcome.error, attempts, refused: true, paused: false });
          continue;
        }
        if (attempts >= this.deps.maxAttempts) {
          // Kept first in line, tried again at once when the receiver enables the stream.
          await store.deferQueuedSet(set.seq, 0, 0, outcome.error);
          await store.updateSsfStream({
            ...stream,
            status: 'paused',
            reason: `delivery failed ${attempts} times: ${outcome.error}`.slice(0, 256),
            updatedAt: Math.floor(clock.now() / 1000),
          });
          await this.deps.onFailure({ stream, set, error: outcome.error, attempts, refused: false, paused: true });
          return;
        }
        const wait = Math.min(MAX_BACKOFF_SECONDS, this.deps.retryBase * 2 ** (attempts - 1));
        await store.deferQueuedSet(set.seq, attempts, clock.now() + wait * 1000, outcome.error);
        return;
      }
    }
  }

  private async post(
    stream: SsfStreamRecord,
    set: QueuedSetRecord,
  ): Promise<{ ok: true } | { ok: false; refused: boolean; error: string }> {
    const headers: Record<string, string> = { 'content-type': SET_MEDIA_TYPE, accept: 'application/json' };
    if (stream.authorizationHeader)
      headers.authorization = this.deps.master
        .open(stream.authorizationHeader, `ssf-push:${stream.streamId}`)
        .toString();
    try {
      const res = await this.deps.outbound.fetch(stream.endpointUrl as string, {
        method: 'POST',
        headers,
        body: set.set,
        acceptStatus: () => true,
      });
      if (res.status >= 200 && res.status < 300) return { ok: true };
      if (res.status === 400) return { ok: false, refused: true, error: refusal(res.body) };
      return { ok: false, refused: false, error: `HTTP ${res.status}` };
    } catch (err) {
      return { ok: false, refused: false, error: err instanceof OutboundError ? err.message : 'unreachable' };
    }
  }
}

/** RFC 8935 §2.3: the receiver's `err` (one of the registered codes) and its description, bounded. */
function refusal(body: Buffer): string {
  try {
    const b = JSON.parse(body.toString()) as { err?: unknown; description?: unknown };
    const err =
      typeof b.err === 'string' && (SET_DELIVERY_ERRORS as readonly string[]).includes(b.err)
        ? b.err
        : 'invalid_request';
    const description = typeof b.description === 'string' ? `: ${b.description.slice(0, 200)}` : '';
    return `${err}${description}`;
  } catch {
    return 'HTTP 400';
  }
}
