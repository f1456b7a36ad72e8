import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { AuditEvent } from '@latchkey/protocol';
import { randomBytes } from 'node:crypto';
import { LatchkeyError } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import type { KeyStore, KeyTransition, LeaseStore, SettingsStore, SigningKeyRecord } from '../storage/ports.ts';
import type { RevocationLog } from '../revocation/revocation_log.ts';
import type { KeyRing } from './key_ring.ts';
import { planRotation, type RotationAction, type RotationPolicy } from './rotation_plan.ts';

const LEASE = 'key-rotation';
const REQUESTED = 'key_rotation_requested';

export interface KeyRotatorDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  store: Pick<KeyStore, 'listKeys' | 'transitionKeys' | 'removeExpiredKeys'> &
    LeaseStore &
    Pick<SettingsStore, 'getSetting' | 'setSetting'>;
  ring: Pick<KeyRing, 'createKey' | 'reload'>;
  events: ServerEvents;
  policy: RotationPolicy;
  /** How often every replica reloads its keys and the lease holder runs the schedule (seconds). */
  checkInterval: number;
  /** How long a retired or revoked key's tokens can still be valid: longest token lifetime + skew (seconds). */
  retireGrace: number;
  /** Key changes go on the keys feed; a revoked key also becomes a revocation entry. */
  feed: Pick<RevocationLog, 'keyEvent' | 'revokeKey'>;
  onError?: (err: unknown) => void;
}

export class KeyConflictError extends Error {}

/**
 * Runs the key lifecycle inside the IdP. State lives in storage, so a restart picks the schedule
 * up where it was; exactly one replica (the holder of a database lease) rotates, while every
 * replica reloads its keys each check interval. Manual operations (rotate, revoke) may run on any
 * replica: every change is a conditional, atomic transition.
 */
export class KeyRotator {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly holder = randomBytes(9).toString('base64url');
  private readonly deps: KeyRotatorDeps;

  constructor(deps: KeyRotatorDeps) {
    this.deps = deps;
  }

  /** One pass at start (creating the first key if there is none), then one per check interval. */
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => {
      this.running ??= this.tick()
        .catch((err: unknown) => this.deps.onError?.(err))
        .finally(() => (this.running = undefined));
    }, this.deps.checkInterval * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  private now = (): number => epochSeconds(this.deps.clock);

  /** Runs the schedule if this replica holds the lease, then reloads the key ring. */
  async tick(): Promise<void> {
    const keys = await this.deps.store.listKeys();
    const noSigner = !keys.some((k) => k.state === 'current');
    // Without any signing key, any replica may act: the unique indexes keep it to one key.
    const leader =
      (await this.deps.store.tryLease(LEASE, this.holder, this.deps.clock.now() + this.deps.checkInterval * 3000)) ||
      noSigner;
    if (leader) {
      await this.apply(keys);
      const gone = new Map(keys.map((k) => [k.kid, k.alg]));
      const staged: AuditEvent[] = [];
      const removed = await this.deps.store.removeExpiredKeys(this.now(), (kid) => {
        const e = this.deps.events.stage('key.removed', {
          actor: 'system',
          subject: kid,
          outcome: 'success',
          detail: { kid },
        });
        staged.push(e);
        return [e];
      });
      this.deps.events.committed(...staged);
      for (const kid of removed) await this.deps.feed.keyEvent('key.removed', kid, gone.get(kid) ?? '');
    }
    await this.deps.ring.reload();
  }

  /** Applies the plan until it asks for nothing more (a promotion is followed by a new next key). */
  private async apply(initial: SigningKeyRecord[]): Promise<void> {
    let keys = initial;
    for (let round = 0; round < 3; round++) {
      const requested = (await this.deps.store.getSetting(REQUESTED)) === '1';
      const actions = planRotation(keys, this.now(), this.deps.policy, requested);
      if (actions.length === 0) return;
      for (const a of actions) await this.run(a, keys);
      keys = await this.deps.store.listKeys();
    }
  }

  private async run(action: RotationAction, keys: SigningKeyRecord[]): Promise<void> {
    if (action.kind === 'create_current' || action.kind === 'create_next') {
      const state = action.kind === 'create_current' ? 'current' : 'next';
      try {
        let event: AuditEvent | undefined;
        const k = await this.deps.ring.createKey(action.alg, state, (r) => {
          event = this.deps.events.stage('key.created', {
            actor: 'system',
            subject: r.kid,
            outcome: 'success',
            detail: { kid: r.kid, alg: r.alg, state },
          });
          return [event];
        });
        this.deps.events.committed(event!);
        await this.deps.feed.keyEvent('key.added', k.kid, k.alg, k.publicJwk);
        if (state === 'current') await this.deps.feed.keyEvent('key.activated', k.kid, k.alg);
      } catch (err) {
        if (!(err instanceof LatchkeyError && err.code === 'storage_conflict')) throw err;
      }
      return;
    }
    const now = this.now();
    const transitions: KeyTransition[] = [{ kid: action.next, from: 'next', to: 'current', at: now }];
    if (action.current)
      transitions.unshift({
        kid: action.current,
        from: 'current',
        to: 'retired',
        at: now,
        removeAfter: now + this.deps.retireGrace,
      });
    const alg = keys.find((k) => k.kid === action.next)?.alg ?? '';
    const staged = [
      this.deps.events.stage('key.activated', {
        actor: 'system',
        subject: action.next,
        outcome: 'success',
        detail: { kid: action.next, alg, replaces: action.current ?? null },
      }),
    ];
    if (action.current)
      staged.push(
        this.deps.events.stage('key.retired', {
          actor: 'system',
          subject: action.current,
          outcome: 'success',
          detail: { kid: action.current, remove_after: now + this.deps.retireGrace },
        }),
      );
    if (await this.deps.store.transitionKeys(transitions, staged)) {
      this.deps.events.committed(...staged);
      await this.deps.store.setSetting(REQUESTED, '0');
      await this.deps.feed.keyEvent('key.activated', action.next, alg);
      if (action.current)
        await this.deps.feed.keyEvent(
          'key.retired',
          action.current,
          keys.find((k) => k.kid === action.current)?.alg ?? '',
        );
    }
  }

  /**
   * Brings the rotation forward. Without `now`, the next key takes over as soon as it has been
   * announced for the full window; with `now`, at once (verifiers that have not seen it yet will
   * refetch their JWKS on the unknown kid).
   */
  async rotate(options: { now: boolean; actor: string }): Promise<void> {
    await this.deps.store.setSetting(REQUESTED, '1');
    let keys = await this.deps.store.listKeys();
    if (!keys.some((k) => k.state === 'next')) {
      await this.run({ kind: 'create_next', alg: this.deps.policy.alg }, keys);
      keys = await this.deps.store.listKeys();
    }
    await this.deps.events.emit('key.rotation_requested', {
      actor: options.actor,
      outcome: 'success',
      detail: { immediate: options.now },
    });
    if (options.now) {
      const next = keys.find((k) => k.state === 'next');
      const current = keys.find((k) => k.state === 'current');
      if (!next) throw new KeyConflictError('no next key to promote');
      await this.run({ kind: 'promote', next: next.kid, ...(current ? { current: current.kid } : {}) }, keys);
      await this.apply(await this.deps.store.listKeys());
    }
    await this.deps.ring.reload();
  }

  /**
   * Compromise: the key leaves the JWKS at once and its tokens stop verifying. A revoked current
   * key is replaced straight away (by the next key, or a new one).
   */
  async revoke(kid: string, actor: string): Promise<boolean> {
    const key = (await this.deps.store.listKeys()).find((k) => k.kid === kid);
    if (!key || key.state === 'revoked') return false;
    const now = this.now();
    const event = this.deps.events.stage('key.revoked', {
      actor,
      subject: kid,
      outcome: 'success',
      detail: { kid, was: key.state },
    });
    const ok = await this.deps.store.transitionKeys(
      [{ kid, from: key.state, to: 'revoked', at: now, removeAfter: now + this.deps.retireGrace }],
      [event],
    );
    if (!ok) throw new KeyConflictError('the key changed state meanwhile; try again');
    this.deps.events.committed(event);
    await this.deps.feed.revokeKey(kid);
    await this.deps.feed.keyEvent('key.revoked', kid, key.alg);
    await this.apply(await this.deps.store.listKeys());
    await this.deps.ring.reload();
    return true;
  }
}
