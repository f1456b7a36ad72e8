import { randomBytes, randomUUID } from 'node:crypto';
import {
  type AuditEvent,
  type Clock,
  epochSeconds,
  SECURITY_EVENT_TYPES,
  SET_TYP,
  type SecurityEventTokenClaims,
  subjectKey,
} from '@latchkey/protocol';
import { Leadership, Passes } from '../passes.ts';
import type { KeyRing } from '../keys/key_ring.ts';
import type {
  AuditStore,
  LeaseStore,
  QueuedSetRecord,
  SettingsStore,
  SsfStore,
  SsfStreamRecord,
  UserStore,
} from '../storage/ports.ts';
import { type SecurityEvent, securityEventsOf } from './security_events.ts';
import { deliveredOf } from './ssf_streams.ts';

const LEASE = 'ssf-transmitter';
const CURSOR = 'ssf.cursor';
const PAGE = 500;

export interface SsfTransmitterDeps {
  clock: Clock;
  issuer: string;
  store: Pick<AuditStore, 'queryAuditEvents' | 'auditHead'> &
    Pick<LeaseStore, 'tryLease'> &
    Pick<SettingsStore, 'getSetting'> &
    Pick<SsfStore, 'listSsfStreams' | 'ssfSubjects' | 'enqueueSets' | 'countQueuedSets'> &
    Pick<UserStore, 'getUser'>;
  keys: Pick<KeyRing, 'signDocument'>;
  /** Most SETs waiting in one stream; past it new ones are not queued, and that is reported. */
  maxQueue: number;
  /** Seconds between passes (each local audit append also triggers one, 100 ms later). */
  interval: number;
  /** After SETs were queued: wake the push delivery and long polls. */
  onQueued: () => void;
  /** SETs a full stream could not take (reported in the audit trail). */
  onDropped: (stream: SsfStreamRecord, count: number, eventType: string) => void;
  onError: (err: unknown) => void;
}

/**
 * The Shared Signals transmitter: reads the audit log in order from a cursor kept in storage,
 * turns each event that stands for a security event (security_events.ts) into one SET per stream
 * that asked for its type and did not remove its subject, signed by the IdP's current key, and
 * queues them with the cursor's move in one transaction — so each audit event becomes its SETs
 * exactly once, on whichever replica holds the lease, whatever crashes in between. Disabled
 * streams get nothing; paused ones keep theirs until enabled (SSF §8.1.2).
 */
export class SsfTransmitter {
  private readonly deps: SsfTransmitterDeps;
  private readonly passes: Passes;
  private readonly leadership: Leadership;

  constructor(deps: SsfTransmitterDeps) {
    this.deps = deps;
    this.passes = new Passes(() => this.passOnce(), deps.onError, { nudgeDelayMs: 100 });
    this.leadership = new Leadership({
      store: deps.store,
      name: LEASE,
      holdMs: Math.max(deps.interval * 3, 10) * 1000,
      clock: deps.clock,
    });
  }

  /** A pass within 100 ms (after each local audit append). */
  readonly nudge = (): void => this.passes.nudge();

  start(): void {
    this.passes.start(this.deps.interval * 1000);
  }

  stop(): Promise<void> {
    return this.passes.stop();
  }

  /** One pass over the log since the cursor; passes never overlap. */
  pass(): Promise<void> {
    return this.passes.pass();
  }

  /** A SET for one stream (SSF §4.1: `typ` secevent+jwt, no `sub`, no `exp`, the subject in `sub_id`). */
  sign(
    stream: SsfStreamRecord,
    e: SecurityEvent,
    txn: string,
  ): Omit<QueuedSetRecord, 'seq' | 'attempts' | 'lastError'> {
    const now = epochSeconds(this.deps.clock);
    const claims: SecurityEventTokenClaims = {
      iss: this.deps.issuer,
      jti: randomBytes(16).toString('base64url'),
      iat: now,
      aud: stream.aud.length === 1 ? (stream.aud[0] as string) : stream.aud,
      txn,
      sub_id: e.subject,
      events: { [e.type]: e.event },
    };
    const { jws } = this.deps.keys.signDocument(claims, SET_TYP);
    return {
      streamId: stream.streamId,
      jti: claims.jti,
      eventType: e.type,
      set: jws,
      createdAt: now,
      nextAttemptAt: 0,
    };
  }

  /** A SET not from the log (a verification, a stream update), queued now. */
  async direct(stream: SsfStreamRecord, e: SecurityEvent): Promise<void> {
    const set = this.sign(stream, e, randomUUID());
    const cursor = (await this.deps.store.getSetting(CURSOR)) ?? '0';
    // The cursor is written back as it is: a direct SET does not move it.
    await this.deps.store.enqueueSets([set], { name: CURSOR, value: cursor });
    this.deps.onQueued();
  }

  /** SSF §8.1.5: the transmitter paused, enabled or disabled a stream on its own. */
  streamUpdated(stream: SsfStreamRecord, status: string, reason: string): Promise<void> {
    return this.direct(stream, {
      type: SECURITY_EVENT_TYPES.streamUpdated,
      subject: { format: 'opaque', id: stream.streamId },
      event: { status, reason },
    });
  }

  private async passOnce(): Promise<void> {
    const { store } = this.deps;
    if (!(await this.leadership.leads())) return;
    const stored = await store.getSetting(CURSOR);
    // A new deployment starts at the log's head: receivers get what happens from now on.
    let cursor = stored !== undefined ? Number(stored) : ((await store.auditHead())?.seq ?? 0);
    if (stored === undefined) await store.enqueueSets([], { name: CURSOR, value: String(cursor) });
    // No stream to feed (the usual case): the cursor follows the log's head without reading the log.
    if ((await store.listSsfStreams()).every((s) => s.status === 'disabled')) {
      const head = (await store.auditHead())?.seq ?? 0;
      if (head > cursor) await store.enqueueSets([], { name: CURSOR, value: String(head) });
      return;
    }
    for (;;) {
      const page = await store.queryAuditEvents({ after: cursor, limit: PAGE });
      if (page.length === 0 || this.passes.stopped) return;
      const streams = (await store.listSsfStreams()).filter((s) => s.status !== 'disabled');
      const subjects = new Map<string, Map<string, boolean>>();
      for (const s of streams) subjects.set(s.streamId, await store.ssfSubjects(s.streamId));
      const queued = new Map<string, number>();
      const sets: Omit<QueuedSetRecord, 'seq' | 'attempts' | 'lastError'>[] = [];
      const dropped: [SsfStreamRecord, string][] = [];
      for (const record of page) {
        const events = streams.length > 0 ? await this.eventsOf(record) : [];
        for (const e of events)
          for (const s of streams) {
            if (!deliveredOf(s.eventsRequested).includes(e.type)) continue;
            // SSF §8.1.3: every subject by default (`default_subjects` ALL), unless the receiver removed it.
            if (subjects.get(s.streamId)?.get(subjectKey(e.subject)) === false) continue;
            const n = queued.get(s.streamId) ?? (await store.countQueuedSets(s.streamId));
            if (n >= this.deps.maxQueue) {
              dropped.push([s, e.type]);
              continue;
            }
            queued.set(s.streamId, n + 1);
            sets.push(this.sign(s, e, String(record.seq)));
          }
        cursor = record.seq;
      }
      await store.enqueueSets(sets, { name: CURSOR, value: String(cursor) });
      if (sets.length > 0) this.deps.onQueued();
      for (const [s, type] of dropped) this.deps.onDropped(s, 1, type);
      if (page.length < PAGE) return;
    }
  }

  private eventsOf(e: AuditEvent): Promise<SecurityEvent[]> {
    return securityEventsOf(e, { issuer: this.deps.issuer, user: (sub) => this.deps.store.getUser(sub) });
  }
}
