import type { Clock } from '@latchkey/protocol';
import type { LoginFailureStore } from '../storage/ports.ts';

/** How failed logins slow further attempts down (settings `loginFreeFailures`, `loginMaxDelay`, ...). */
export interface LockoutPolicy {
  /** Failures of one user from one source before that pair waits (OWASP: a handful). */
  freeFailures: number;
  /** Failures of one user from all sources together before unknown devices wait too. */
  accountFailures: number;
  /** Failures from one source across all users (password spraying) before that source waits. */
  sourceFailures: number;
  /** The first wait, doubled with every further failure... */
  baseDelaySeconds: number;
  /** ...up to this; no lock lasts longer, however many failures. */
  maxDelaySeconds: number;
  /** Failures older than this are forgotten: counting starts again. */
  windowSeconds: number;
}

export const DEFAULT_LOCKOUT: LockoutPolicy = {
  freeFailures: 5,
  accountFailures: 20,
  sourceFailures: 100,
  baseDelaySeconds: 1,
  maxDelaySeconds: 900,
  windowSeconds: 3600,
};

/** Who is trying: the user (or, for a name no user has, the name asked for) and where from. */
export interface LoginAttempt {
  /** The user's `sub`, or undefined when no user has the name. */
  sub: string | undefined;
  /** The normalised username asked for (keys unknown names, so probing them is throttled alike). */
  usernameKey: string;
  sourceIp: string;
  /** The browser shows proof of an earlier successful login of this user (a device cookie). */
  knownDevice: boolean;
}

export type LockoutVerdict =
  | { locked: false }
  | { locked: true; retryAfter: number; scope: 'user_source' | 'account' | 'source' };

/**
 * Progressive lockout for password logins, counted in storage so every replica sees every
 * failure (each count one atomic upsert). Three counts, each with its own threshold, and a
 * wait that doubles with every failure past it, capped at `maxDelaySeconds`:
 *
 * - **one user from one source** — what an attacker guessing one account from one address
 *   throttles: only themselves;
 * - **one user from everywhere** — a distributed guess at one account; this one never holds back
 *   a browser that has logged in as the user before (`knownDevice`), so an attacker cannot use it
 *   to lock the user out of their own device, and like every lock it ends within the cap;
 * - **one source across users** — password spraying from one address.
 *
 * A correct password from a locked pair or source is refused too (a lock that a right guess
 * lifts is no lock); a success clears its own pair only, so the attacker's counts survive.
 */
export class LoginLockout {
  private readonly store: LoginFailureStore;
  private readonly clock: Clock;
  readonly policy: LockoutPolicy;

  constructor(store: LoginFailureStore, clock: Clock, policy: LockoutPolicy = DEFAULT_LOCKOUT) {
    this.store = store;
    this.clock = clock;
    this.policy = policy;
  }

  private keys(a: LoginAttempt) {
    // Keys are text without NUL (PostgreSQL stores none): a space separates, which neither a sub nor an address has.
    const who = a.sub ? `user:${a.sub}` : `name:${a.usernameKey}`;
    return { pair: `${who} ${a.sourceIp}`, account: who, source: `source:${a.sourceIp}` };
  }

  /** Seconds one more attempt must wait after `failures` against a threshold of `free`, or 0. */
  private delay(failures: number, free: number): number {
    if (failures < free) return 0;
    const doublings = Math.min(failures - free, 30);
    return Math.min(this.policy.maxDelaySeconds, this.policy.baseDelaySeconds * 2 ** doublings);
  }

  /** Whether this attempt may be checked at all; asked before the password is hashed. */
  async check(a: LoginAttempt): Promise<LockoutVerdict> {
    const k = this.keys(a);
    const counts = await this.store.loginFailures([k.pair, k.account, k.source]);
    const now = this.clock.now();
    const windowMs = this.policy.windowSeconds * 1000;
    const wait = (key: string, free: number): number => {
      const c = counts.get(key);
      if (!c || now - c.lastFailureAt >= windowMs) return 0;
      return Math.max(0, Math.ceil((c.lastFailureAt + this.delay(c.failures, free) * 1000 - now) / 1000));
    };
    const checks: [LockoutVerdict & { locked: true }, number][] = [
      [{ locked: true, scope: 'user_source', retryAfter: 0 }, wait(k.pair, this.policy.freeFailures)],
      [
        { locked: true, scope: 'account', retryAfter: 0 },
        a.knownDevice ? 0 : wait(k.account, this.policy.accountFailures),
      ],
      [{ locked: true, scope: 'source', retryAfter: 0 }, wait(k.source, this.policy.sourceFailures)],
    ];
    const worst = checks.filter(([, w]) => w > 0).sort((x, y) => y[1] - x[1])[0];
    return worst ? { ...worst[0], retryAfter: worst[1] } : { locked: false };
  }

  /** Counts a failed attempt against its pair, account and source; returns the pair's count. */
  async failed(a: LoginAttempt): Promise<number> {
    const k = this.keys(a);
    const [pair] = await this.store.recordLoginFailure(
      [k.pair, k.account, k.source],
      this.clock.now(),
      this.policy.windowSeconds * 1000,
    );
    return pair ?? 1;
  }

  /** A successful login forgets its own pair's failures (not the account's or the source's). */
  async succeeded(a: LoginAttempt): Promise<void> {
    await this.store.clearLoginFailures([this.keys(a).pair]);
  }

  /** An administrator's unlock: every count of this user. */
  async unlock(sub: string): Promise<void> {
    await this.store.clearLoginFailuresOf(`user:${sub}`);
  }
}
