import type { AuditRecord } from '../../storage/ports.ts';
import { DistinctWindow } from './distinct_window.ts';
import { eventMs, type Detector, type Finding } from './types.ts';

const GUESSES = new Set(['bad_password', 'unknown_user', 'no_password']);

/**
 * Password spraying: one address trying a few common passwords against many users, staying under
 * each user's lockout. Fires when failed sign-ins from one address name `users` distinct
 * usernames within `windowSeconds`; a person mistyping their own password names one.
 */
export function passwordSpraying(options: { users: number; windowSeconds: number }): Detector {
  const perAddress = new DistinctWindow(options.windowSeconds * 1000, options.users);
  return {
    name: 'password_spraying',
    observe(e: AuditRecord): Finding[] {
      if (e.type !== 'user.login_failed' || !GUESSES.has(e.reason ?? '') || e.source_ip === undefined) return [];
      const username = typeof e.detail?.username === 'string' ? e.detail.username : (e.subject ?? '?');
      const hit = perAddress.add(e.source_ip, username, eventMs(e), e.seq);
      if (!hit) return [];
      return [
        {
          detector: 'password_spraying',
          severity: 'high',
          key: `ip:${e.source_ip}`,
          summary: `failed sign-ins for ${hit.values.length} different users from ${e.source_ip} within ${options.windowSeconds}s`,
          firstSeq: hit.firstSeq,
          lastSeq: e.seq,
          count: hit.values.length,
          detail: { usernames: hit.values.slice(0, 50) },
        },
      ];
    },
  };
}
