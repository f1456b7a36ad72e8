import type { MasterKey } from '../keys/master_key.ts';

const AAD = 'latchkey/known-device/v1';

/**
 * Proof, kept in the browser, that it has logged in as a user before: the user's `sub` sealed
 * under the master key. The lockout never holds such a browser back for failures elsewhere
 * (OWASP's device cookies), so an attacker guessing from many addresses cannot lock the user
 * out of their own device. It grants nothing else: the password is still needed.
 */
export class KnownDevices {
  private readonly master: Pick<MasterKey, 'seal' | 'open'>;

  constructor(master: Pick<MasterKey, 'seal' | 'open'>) {
    this.master = master;
  }

  issue(sub: string, now: number): string {
    return this.master.seal(Buffer.from(JSON.stringify({ sub, at: now })), AAD);
  }

  /** Whether `cookie` was issued to a browser that logged in as `sub`. */
  knows(cookie: string | undefined, sub: string | undefined): boolean {
    if (!cookie || !sub || cookie.length > 1024) return false;
    try {
      return (JSON.parse(this.master.open(cookie, AAD).toString('utf8')) as { sub: string }).sub === sub;
    } catch {
      return false;
    }
  }
}
