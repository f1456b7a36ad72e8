import { createHmac } from 'node:crypto';
import type { Clock, LoginFailureReason } from '@latchkey/protocol';
import type { AuditEventDetails } from '@latchkey/protocol/audit-details';
import type { ServerEvents } from '../events.ts';
import type { UserRecord, UserStore } from '../storage/ports.ts';
import type { LoginLockout } from './login_lockout.ts';
import type { PasswordHasher } from './password_hash.ts';
import { usernameKey } from './username.ts';

/** Where a login comes from: the request it arrived in and the client it is for. */
export interface LoginContext {
  clientId: string;
  requestId: string;
  sourceIp: string;
  /** The browser's known-device cookie matched the user (checked by the caller). */
  knownDevice: (sub: string | undefined) => boolean;
}

export type LoginOutcome =
  | { ok: true; user: UserRecord; mustChangePassword: boolean }
  | { ok: false; reason: LoginFailureReason; retryAfter?: number };

/**
 * A password login, in this order: the lockout (before any hashing, so a locked attempt costs
 * nothing), the user, the password (an unknown user costs the same hash), then the outcome —
 * counted against the lockout and written as one audit event. The caller tells the person only
 * "wrong username or password" (or how long to wait), whatever the reason.
 */
export class PasswordLogin {
  private readonly deps: {
    users: Pick<UserStore, 'getUserByUsername' | 'updateUser'>;
    hasher: Pick<PasswordHasher, 'verify' | 'needsRehash' | 'hash'>;
    lockout: Pick<LoginLockout, 'check' | 'failed' | 'succeeded'>;
    events: ServerEvents;
    clock: Clock;
    /** Keys the hash that stands in an audit event for a name no user has (it may be a password typed in the wrong field). */
    nameHashKey: Buffer;
  };

  constructor(deps: PasswordLogin['deps']) {
    this.deps = deps;
  }

  async login(username: string, password: string, ctx: LoginContext): Promise<LoginOutcome> {
    const key = usernameKey(username).slice(0, 256);
    const user = await this.deps.users.getUserByUsername(key);
    const knownDevice = ctx.knownDevice(user?.sub);
    const attempt = { sub: user?.sub, usernameKey: key, sourceIp: ctx.sourceIp, knownDevice };
    const fail = async (reason: LoginFailureReason, lock?: { scope: string; retryAfter: number }) => {
      if (!lock) await this.deps.lockout.failed(attempt);
      await this.failedEvent(user, ctx, reason, {
        username: user ? user.usernameKey : this.unknownName(key),
        method: 'password',
        known_device: knownDevice,
        ...(lock ? { lock: lock.scope, retry_after: lock.retryAfter } : {}),
      });
      return { ok: false as const, reason, ...(lock ? { retryAfter: lock.retryAfter } : {}) };
    };
    const verdict = await this.deps.lockout.check(attempt);
    if (verdict.locked) return fail('locked', verdict);
    const matches = await this.deps.hasher.verify(password, user?.passwordHash ?? null);
    if (!user) return fail('unknown_user');
    if (user.passwordHash === null) return fail('no_password');
    if (!matches) return fail('bad_password');
    // A disabled user's correct password is still refused, and counted: the account is not to be used.
    if (user.disabled) return fail('user_disabled');
    await this.deps.lockout.succeeded(attempt);
    let current = user;
    if (this.deps.hasher.needsRehash(user.passwordHash)) {
      // The cost rose since this hash was made: store one at today's cost, now that the password is known.
      current = { ...user, passwordHash: await this.deps.hasher.hash(password) };
      await this.deps.users.updateUser(current);
    }
    return { ok: true, user: current, mustChangePassword: user.mustChangePassword };
  }

  /**
   * What an audit event records of a name no user has: a keyed hash, never the name — people type
   * their password into the username field. The same name gives the same value, so the detectors
   * still count distinct names; nobody without the master key can test guesses against it.
   */
  private unknownName(key: string): string {
    return `?${createHmac('sha256', this.deps.nameHashKey).update(`latchkey/unknown-username/v1\0${key}`).digest('base64url').slice(0, 22)}`;
  }

  /** The one `user.login_failed` event, about a user or a name no user has. */
  private failedEvent(
    user: UserRecord | undefined,
    ctx: LoginContext,
    reason: LoginFailureReason,
    detail: AuditEventDetails['user.login_failed'],
  ): Promise<void> {
    return this.deps.events.emit('user.login_failed', {
      actor: user ? `User::${JSON.stringify(user.sub)}` : 'anonymous',
      ...(user ? { subject: user.sub } : {}),
      client_id: ctx.clientId,
      outcome: 'failure',
      reason,
      request_id: ctx.requestId,
      source_ip: ctx.sourceIp,
      detail,
    });
  }

  private attempt(user: UserRecord, ctx: LoginContext) {
    return {
      sub: user.sub,
      usernameKey: user.usernameKey,
      sourceIp: ctx.sourceIp,
      knownDevice: ctx.knownDevice(user.sub),
    };
  }

  /** Seconds the second step must wait (the same lockout as the password), or 0. */
  async locked(user: UserRecord, ctx: LoginContext): Promise<number> {
    const v = await this.deps.lockout.check(this.attempt(user, ctx));
    return v.locked ? v.retryAfter : 0;
  }

  /** A wrong second factor (a code: TOTP or recovery; or a passkey): counted by the lockout like a wrong password, and audited. */
  async secondFactorFailed(user: UserRecord, ctx: LoginContext, factor: 'code' | 'passkey'): Promise<void> {
    await this.deps.lockout.failed(this.attempt(user, ctx));
    await this.failedEvent(user, ctx, 'second_factor_failed', {
      username: user.usernameKey,
      method: factor === 'passkey' ? 'password+passkey' : 'password+code',
      known_device: ctx.knownDevice(user.sub),
    });
  }

  /** Writes the success event, once the sign-in has led somewhere (a code issued): by password, or by a live session. */
  async succeeded(
    user: UserRecord,
    ctx: LoginContext,
    extra: { passwordChanged?: boolean; method?: string } = {},
  ): Promise<void> {
    await this.deps.events.emit('user.login', {
      actor: `User::${JSON.stringify(user.sub)}`,
      subject: user.sub,
      client_id: ctx.clientId,
      outcome: 'success',
      request_id: ctx.requestId,
      source_ip: ctx.sourceIp,
      detail: {
        username: user.username,
        method: extra.method ?? 'password',
        known_device: ctx.knownDevice(user.sub),
        ...(extra.passwordChanged ? { password_changed: true } : {}),
      },
    });
  }
}
