import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { MasterKey } from '../../keys/master_key.ts';
import type { AuthorizationRequest } from './authorization_request.ts';

/** What the login form carries between /authorize and the POST of the credentials. */
export interface LoginTransaction {
  request: AuthorizationRequest;
  /** The value of the browser's CSRF cookie this form belongs to. */
  csrf: string;
  /** Epoch ms after which the form is stale. */
  expiresAt: number;
  /**
   * Set once the password was right: what is still to do before the code is issued — a new
   * password, the second factor, enrolling one (with the offered secret), or nothing (`done`).
   */
  authenticated?: {
    sub: string;
    authTime: number;
    next: 'password_change' | 'second_factor' | 'enrol' | 'done' | 'consent';
    /** At `consent`: the sign-in session the code will belong to (started when the user authenticated). */
    sid?: string;
    offered?: string;
    /** The WebAuthn challenge of the passkey options the page carries. */
    passkeyChallenge?: string;
    method?: string;
    passwordChanged?: boolean;
  };
}

const AAD = 'latchkey/login-transaction/v1';

/**
 * The pending authorization request, sealed (AES-256-GCM under the master key) into the login
 * form itself, so any replica can finish a login another began, and nothing is stored for a
 * request that is never completed. The form is bound to a random value in an HttpOnly cookie
 * (double submit, checked in constant time): a page on another site can post the form but never
 * knows that value.
 */
export class LoginTransactions {
  private readonly master: Pick<MasterKey, 'seal' | 'open'>;
  private readonly ttlMs: number;

  constructor(master: Pick<MasterKey, 'seal' | 'open'>, ttlSeconds = 600) {
    this.master = master;
    this.ttlMs = ttlSeconds * 1000;
  }

  /** A new CSRF cookie value. */
  static csrfValue(): string {
    return randomBytes(24).toString('base64url');
  }

  seal(
    request: AuthorizationRequest,
    csrf: string,
    now: number,
    authenticated?: LoginTransaction['authenticated'],
  ): string {
    const tx: LoginTransaction = {
      request,
      csrf,
      expiresAt: now + this.ttlMs,
      ...(authenticated ? { authenticated } : {}),
    };
    return this.master.seal(Buffer.from(JSON.stringify(tx)), AAD);
  }

  /** The transaction, when `sealed` is ours, unexpired, and belongs to the browser's `cookie`. */
  open(sealed: string | undefined, cookie: string | undefined, now: number): LoginTransaction | 'expired' | undefined {
    if (!sealed || sealed.length > 8192) return undefined;
    let tx: LoginTransaction;
    try {
      tx = JSON.parse(this.master.open(sealed, AAD).toString('utf8')) as LoginTransaction;
    } catch {
      return undefined;
    }
    const a = Buffer.from(tx.csrf);
    const b = Buffer.from(cookie ?? '');
    if (a.length !== b.length || !timingSafeEqual(a, b)) return undefined;
    return tx.expiresAt < now ? 'expired' : tx;
  }
}
