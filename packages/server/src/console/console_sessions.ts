import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { ServerEvents } from '../events.ts';
import { constantTimeEqual, sha256 } from '../secrets.ts';
import type { ConsoleSessionRecord, ConsoleSessionStore, ReplayStore } from '../storage/ports.ts';

export type ConsoleSignInMethod = 'admin_token' | 'sign_in_link' | 'user';

/** How long a one-time sign-in link can be used (seconds). */
export const SIGN_IN_LINK_TTL = 600;

/**
 * Sign-in sessions of the admin console. The browser holds a random secret in an HttpOnly,
 * SameSite=Strict cookie and the database its hash, so every replica knows the session and a
 * sign-out ends it everywhere. Each session has a CSRF token, an HMAC of the cookie under the
 * IdP's hash key: the console sends it in `x-csrf-token` on every admin API call, which a page
 * of another origin cannot read or forge (OWASP CSRF cheat sheet, "synchronizer token").
 *
 * One-time sign-in links (`POST /admin/console/links`) carry `<expiry>.<nonce>.<mac>`: the MAC
 * under the same key makes them unforgeable, the replay store makes each usable once (on every
 * replica), and the expiry bounds the rest.
 */
export class ConsoleSessions {
  private readonly store: ConsoleSessionStore;
  private readonly replay: ReplayStore;
  private readonly clock: Clock;
  private readonly key: Buffer;
  private readonly events: ServerEvents;
  readonly lifetime: number;

  constructor(deps: {
    store: ConsoleSessionStore;
    replay: ReplayStore;
    clock: Clock;
    hashKey: Buffer;
    events: ServerEvents;
    lifetime: number;
  }) {
    this.store = deps.store;
    this.replay = deps.replay;
    this.clock = deps.clock;
    this.key = deps.hashKey;
    this.events = deps.events;
    this.lifetime = deps.lifetime;
  }

  private mac(purpose: string, value: string): string {
    return createHmac('sha256', this.key).update(`latchkey-console:${purpose}:${value}`).digest('base64url');
  }

  /** Starts a session; the caller sets `cookie` and hands `csrf` to the page. */
  async start(
    method: ConsoleSignInMethod,
    request: { id: string; ip: string },
    user?: { actor: string; sub: string },
  ): Promise<{ cookie: string; csrf: string; session: ConsoleSessionRecord }> {
    const actor = user?.actor ?? 'admin';
    const cookie = randomBytes(32).toString('base64url');
    const now = epochSeconds(this.clock);
    const session: ConsoleSessionRecord = {
      sid: randomUUID(),
      actor,
      sub: user?.sub ?? null,
      createdAt: now,
      expiresAt: now + this.lifetime,
      endedAt: null,
    };
    const event = this.events.stage('console.signed_in', {
      actor,
      outcome: 'success',
      request_id: request.id,
      source_ip: request.ip,
      detail: { sid: session.sid, method, expires_at: session.expiresAt },
    });
    await this.store.createConsoleSession(sha256(cookie), session, [event]);
    this.events.committed(event);
    return { cookie, csrf: this.csrfOf(cookie), session };
  }

  /** The live session a cookie names, if any. */
  async current(cookie: string | undefined): Promise<ConsoleSessionRecord | undefined> {
    if (!cookie || cookie.length > 128) return undefined;
    const s = await this.store.getConsoleSession(sha256(cookie));
    return s && s.endedAt === null && s.expiresAt > epochSeconds(this.clock) ? s : undefined;
  }

  csrfOf(cookie: string): string {
    return this.mac('csrf', cookie);
  }

  /** Whether `presented` (the `x-csrf-token` header: absent, once or repeated) is the CSRF token of the session `cookie` (constant time). */
  csrfMatches(cookie: string, presented: string | string[] | undefined): boolean {
    return typeof presented === 'string' && constantTimeEqual(presented, this.csrfOf(cookie));
  }

  async end(session: ConsoleSessionRecord, request: { id: string; ip: string }): Promise<void> {
    const event = this.events.stage('console.signed_out', {
      actor: session.actor,
      outcome: 'success',
      request_id: request.id,
      source_ip: request.ip,
      detail: { sid: session.sid },
    });
    if (await this.store.endConsoleSession(session.sid, epochSeconds(this.clock), [event]))
      this.events.committed(event);
  }

  /** A one-time sign-in code, valid for `SIGN_IN_LINK_TTL` seconds. */
  issueLinkCode(): { code: string; expiresAt: number } {
    const expiresAt = epochSeconds(this.clock) + SIGN_IN_LINK_TTL;
    const body = `${expiresAt}.${randomBytes(16).toString('base64url')}`;
    return { code: `${body}.${this.mac('link', body)}`, expiresAt };
  }

  /** Uses a sign-in code: true once for a genuine, unexpired code, false ever after. */
  async useLinkCode(code: string): Promise<boolean> {
    const m = /^(\d{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(code);
    if (!m) return false;
    const expiresAt = Number(m[1]);
    if (!constantTimeEqual(m[3]!, this.mac('link', `${m[1]}.${m[2]}`))) return false;
    if (expiresAt <= epochSeconds(this.clock)) return false;
    return this.replay.useOnce(`console-link:${m[2]}`, expiresAt);
  }
}
