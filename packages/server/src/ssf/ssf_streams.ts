import { randomBytes } from 'node:crypto';
import {
  type Clock,
  epochSeconds,
  SSF_DELIVERY,
  type SsfStreamConfiguration,
  type SsfStreamStatus,
  subjectKey,
} from '@latchkey/protocol';
import { OAuthError } from '../errors.ts';
import type { MasterKey } from '../keys/master_key.ts';
import type { SsfStore, SsfStreamRecord } from '../storage/ports.ts';
import type { AuditEvent } from '@latchkey/protocol';

/** The audit event of a change, staged for the stored stream (written in the change's transaction). */
export type StageChange = (stream: SsfStreamRecord) => AuditEvent;
import type { OutboundFetch } from '../http/outbound_fetch.ts';
import { EVENTS_SUPPORTED } from './security_events.ts';

/** The members of a stream a receiver supplies (SSF §8.1.1), as a create, update or replace request carries them. */
export interface ReceiverSupplied {
  stream_id?: string;
  delivery?: { method?: string; endpoint_url?: string; authorization_header?: string; [k: string]: unknown };
  events_requested?: string[];
  description?: string;
  [member: string]: unknown;
}

export interface SsfStreamsOptions {
  clock: Clock;
  issuer: string;
  store: SsfStore;
  master: Pick<MasterKey, 'seal'>;
  /** Checks a push endpoint against the outbound policy (scheme, literal address) before it is stored. */
  outbound: Pick<OutboundFetch, 'checkUrl'>;
  /** SSF §8.1.1 `min_verification_interval`. */
  minVerificationInterval: number;
  /** Most streams one receiver may hold. */
  maxStreamsPerReceiver: number;
}

const notFound = () => new OAuthError('invalid_request', 'no stream with this stream_id for this receiver', 404);
const bad = (why: string) => new OAuthError('invalid_request', why);

/** The event types a stream gets of those it asked for (SSF §8.1.1 `events_delivered`). */
export const deliveredOf = (requested: readonly string[]): string[] =>
  EVENTS_SUPPORTED.filter((t) => requested.includes(t));

/**
 * SSF 1.0 §8.1 stream management for receivers: each stream belongs to the client that created it
 * and no other client sees it (§8: "only authorized Receivers are able to access or modify"), its
 * `aud` is that client's id, push endpoints pass the IdP's outbound policy, and the `Authorization`
 * value a receiver gives for its push endpoint is kept sealed and never shown again.
 */
export class SsfStreams {
  private readonly o: SsfStreamsOptions;

  constructor(options: SsfStreamsOptions) {
    this.o = options;
  }

  /** The transmitter's view of a stream (§8.1.1); the push `authorization_header` is never echoed. */
  view(s: SsfStreamRecord): SsfStreamConfiguration {
    return {
      stream_id: s.streamId,
      iss: this.o.issuer,
      aud: s.aud.length === 1 ? (s.aud[0] as string) : s.aud,
      events_supported: [...EVENTS_SUPPORTED],
      events_requested: s.eventsRequested,
      events_delivered: deliveredOf(s.eventsRequested),
      delivery:
        s.method === SSF_DELIVERY.push
          ? { method: SSF_DELIVERY.push, endpoint_url: s.endpointUrl as string }
          : { method: SSF_DELIVERY.poll, endpoint_url: this.pollUrl(s.streamId) },
      min_verification_interval: this.o.minVerificationInterval,
      ...(s.description !== null ? { description: s.description } : {}),
    };
  }

  pollUrl(streamId: string): string {
    return `${this.o.issuer}/ssf/poll/${streamId}`;
  }

  /** A stream of this receiver, or 404 (another receiver's stream is as absent as a deleted one). */
  async own(clientId: string, streamId: unknown): Promise<SsfStreamRecord> {
    if (typeof streamId !== 'string' || streamId.length === 0) throw bad('stream_id is required');
    const s = await this.o.store.getSsfStream(streamId);
    if (!s || s.clientId !== clientId) throw notFound();
    return s;
  }

  /** §8.1.1.1: a new stream; poll delivery when the request names none. */
  async create(
    clientId: string,
    body: ReceiverSupplied,
    stage: StageChange,
  ): Promise<{ stream: SsfStreamRecord; event: AuditEvent }> {
    if ((await this.o.store.listSsfStreams(clientId)).length >= this.o.maxStreamsPerReceiver)
      throw new OAuthError(
        'invalid_request',
        `a receiver may hold at most ${this.o.maxStreamsPerReceiver} streams`,
        409,
      );
    const now = epochSeconds(this.o.clock);
    const streamId = randomBytes(16).toString('base64url');
    const record: SsfStreamRecord = {
      streamId,
      clientId,
      aud: [clientId],
      ...this.receiverSupplied(streamId, body, undefined),
      status: 'enabled',
      reason: null,
      verifiedAt: null,
      createdAt: now,
      updatedAt: now,
    };
    const event = stage(record);
    await this.o.store.createSsfStream(record, [event]);
    return { stream: record, event };
  }

  /**
   * §8.1.1.3 (PATCH, `replace` false): members present change, others stay; §8.1.1.4 (PUT,
   * `replace` true): every receiver-supplied member is the request's. Transmitter-supplied members
   * may be sent, and must then be what the transmitter says.
   */
  async change(
    clientId: string,
    body: ReceiverSupplied,
    replace: boolean,
    stage: StageChange,
  ): Promise<{ stream: SsfStreamRecord; event: AuditEvent }> {
    const s = await this.own(clientId, body.stream_id);
    const view = this.view(s) as unknown as Record<string, unknown>;
    for (const m of ['iss', 'aud', 'events_supported', 'events_delivered', 'min_verification_interval'])
      if (body[m] !== undefined && JSON.stringify(body[m]) !== JSON.stringify(view[m]))
        throw bad(`${m} is set by the transmitter and cannot be changed`);
    const next: SsfStreamRecord = {
      ...s,
      ...this.receiverSupplied(s.streamId, replace ? body : { ...this.asRequest(s), ...body }, s),
      updatedAt: epochSeconds(this.o.clock),
    };
    const event = stage(next);
    if (!(await this.o.store.updateSsfStream(next, [event]))) throw notFound();
    return { stream: next, event };
  }

  async remove(
    clientId: string,
    streamId: unknown,
    stage: StageChange,
  ): Promise<{ stream: SsfStreamRecord; event: AuditEvent }> {
    const s = await this.own(clientId, streamId);
    const event = stage(s);
    if (!(await this.o.store.deleteSsfStream(s.streamId, [event]))) throw notFound();
    return { stream: s, event };
  }

  /** §8.1.2.2: the receiver enables, pauses or disables its stream. */
  async setStatus(
    clientId: string,
    body: { stream_id?: unknown; status?: unknown; reason?: unknown },
    stage: StageChange,
  ): Promise<{ stream: SsfStreamRecord; event: AuditEvent }> {
    const s = await this.own(clientId, body.stream_id);
    if (body.status !== 'enabled' && body.status !== 'paused' && body.status !== 'disabled')
      throw bad('status must be enabled, paused or disabled');
    if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > 256))
      throw bad('reason must be a string of at most 256 characters');
    const next = {
      ...s,
      status: body.status as SsfStreamStatus,
      reason: (body.reason as string | undefined) ?? null,
      updatedAt: epochSeconds(this.o.clock),
    };
    const event = stage(next);
    if (!(await this.o.store.updateSsfStream(next, [event]))) throw notFound();
    return { stream: next, event };
  }

  /** §8.1.3.2 / §8.1.3.3: a subject the receiver adds (events about it are sent) or removes (they are not). */
  async setSubject(
    clientId: string,
    body: { stream_id?: unknown; subject?: unknown },
    included: boolean,
  ): Promise<void> {
    const s = await this.own(clientId, body.stream_id);
    const subject = body.subject;
    if (typeof subject !== 'object' || subject === null || Array.isArray(subject))
      throw bad('subject must be a subject identifier object (RFC 9493)');
    const format = (subject as { format?: unknown }).format;
    if (typeof format !== 'string' || format.length === 0) throw bad('subject.format is required');
    const key = subjectKey(subject as Record<string, unknown>);
    if (key.length > 1024) throw bad('subject is too large');
    await this.o.store.setSsfSubject(s.streamId, key, included);
  }

  /** §8.1.4.2: a verification may be asked for once per `min_verification_interval`; 429 otherwise. */
  async verification(clientId: string, body: { stream_id?: unknown; state?: unknown }): Promise<SsfStreamRecord> {
    const s = await this.own(clientId, body.stream_id);
    if (body.state !== undefined && (typeof body.state !== 'string' || body.state.length > 1024))
      throw bad('state must be a string of at most 1024 characters');
    const now = epochSeconds(this.o.clock);
    const wait = s.verifiedAt === null ? 0 : s.verifiedAt + this.o.minVerificationInterval - now;
    if (wait > 0)
      throw new OAuthError(
        'invalid_request',
        `at most one verification every ${this.o.minVerificationInterval} s`,
        429,
        {
          'retry-after': String(wait),
        },
      );
    const next = { ...s, verifiedAt: now };
    await this.o.store.updateSsfStream(next);
    return next;
  }

  /** The stored stream as a request would state it (for PATCH: members absent from the request stay). */
  private asRequest(s: SsfStreamRecord): ReceiverSupplied {
    return {
      delivery: { method: s.method, ...(s.endpointUrl ? { endpoint_url: s.endpointUrl } : {}) },
      events_requested: s.eventsRequested,
      ...(s.description !== null ? { description: s.description } : {}),
    };
  }

  /** The receiver-supplied members, validated (§8.1.1): delivery, events_requested, description. */
  private receiverSupplied(
    streamId: string,
    body: ReceiverSupplied,
    previous: SsfStreamRecord | undefined,
  ): Pick<SsfStreamRecord, 'method' | 'endpointUrl' | 'authorizationHeader' | 'eventsRequested' | 'description'> {
    const d = body.delivery;
    if (d !== undefined && (typeof d !== 'object' || d === null || Array.isArray(d)))
      throw bad('delivery must be an object');
    // §8.1.1.1: no delivery means poll.
    const method = d?.method ?? SSF_DELIVERY.poll;
    if (method !== SSF_DELIVERY.push && method !== SSF_DELIVERY.poll)
      throw bad(`delivery.method must be ${SSF_DELIVERY.push} (push) or ${SSF_DELIVERY.poll} (poll)`);
    let endpointUrl: string | null = null;
    let authorizationHeader: string | null = null;
    if (method === SSF_DELIVERY.push) {
      if (typeof d?.endpoint_url !== 'string' || d.endpoint_url.length > 2048)
        throw bad('push delivery needs delivery.endpoint_url');
      try {
        endpointUrl = this.o.outbound.checkUrl(d.endpoint_url).href;
      } catch (err) {
        throw bad(`delivery.endpoint_url is not allowed: ${(err as Error).message}`);
      }
      if (d.authorization_header !== undefined) {
        if (
          typeof d.authorization_header !== 'string' ||
          d.authorization_header.length > 4096 ||
          /[\r\n]/.test(d.authorization_header)
        )
          throw bad('delivery.authorization_header must be one header value of at most 4096 characters');
        authorizationHeader = this.o.master.seal(Buffer.from(d.authorization_header), `ssf-push:${streamId}`);
      } else if (previous?.method === SSF_DELIVERY.push && previous.endpointUrl === endpointUrl)
        authorizationHeader = previous.authorizationHeader; // PATCH without it keeps it for the same endpoint
    }
    const requested = body.events_requested;
    if (
      requested !== undefined &&
      (!Array.isArray(requested) ||
        requested.length > 50 ||
        requested.some((t) => typeof t !== 'string' || t.length === 0 || t.length > 256))
    )
      throw bad('events_requested must be an array of at most 50 event type URIs');
    const description = body.description;
    if (description !== undefined && typeof description !== 'string') throw bad('description must be a string');
    return {
      method,
      endpointUrl,
      authorizationHeader,
      // §8.1.1: no request means every event type the transmitter has (a security tool wants them all).
      eventsRequested: requested ? [...new Set(requested)] : EVENTS_SUPPORTED.filter((t) => !t.includes('/ssf/')),
      // §8.1.1: "The transmitter MAY truncate the string beyond an allowed max length."
      description: typeof description === 'string' ? description.slice(0, 512) : null,
    };
  }
}
