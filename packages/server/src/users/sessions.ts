import { randomBytes, randomUUID } from 'node:crypto';
import { type Clock, epochSeconds } from '@latchkey/protocol';
import { sha256 } from '../secrets.ts';
import type { SessionRecord, SessionStore } from '../storage/ports.ts';

/**
 * Sign-in sessions at the IdP: after a password sign-in the browser holds a random secret (an
 * HttpOnly cookie; the database keeps its hash), so later authorization requests from that
 * browser are answered without asking again (single sign-on) until the session ends — its
 * lifetime, a logout, or the user being disabled. The session's public id is OpenID Connect's `sid`.
 */
export class Sessions {
  private readonly store: SessionStore;
  private readonly clock: Clock;
  readonly lifetime: number;

  constructor(store: SessionStore, clock: Clock, lifetime: number) {
    this.store = store;
    this.clock = clock;
    this.lifetime = lifetime;
  }

  async start(sub: string, authTime: number): Promise<{ cookie: string; session: SessionRecord }> {
    const cookie = randomBytes(32).toString('base64url');
    const session: SessionRecord = {
      sid: randomUUID(),
      sub,
      authTime,
      expiresAt: epochSeconds(this.clock) + this.lifetime,
      endedAt: null,
    };
    await this.store.createSession(sha256(cookie), session);
    return { cookie, session };
  }

  /** The live session a cookie names, if any. */
  async current(cookie: string | undefined): Promise<SessionRecord | undefined> {
    if (!cookie || cookie.length > 128) return undefined;
    const s = await this.store.getSessionByCookie(sha256(cookie));
    return s && s.endedAt === null && s.expiresAt > epochSeconds(this.clock) ? s : undefined;
  }
}
