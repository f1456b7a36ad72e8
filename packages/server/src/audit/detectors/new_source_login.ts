import type { AuditRecord } from '../../storage/ports.ts';
import type { Detector, Finding } from './types.ts';

/**
 * A user signed in from an address they have not used lately, in a browser that never signed in
 * as them (no device cookie): the shape of an account taken over with a stolen password. Remembers
 * each user's last `remember` addresses (for at most `maxUsers` users); a user's first sign-in
 * raises nothing.
 */
export function newSourceLogin(options: { remember?: number; maxUsers?: number } = {}): Detector {
  const remember = options.remember ?? 10;
  const maxUsers = options.maxUsers ?? 100_000;
  const sources = new Map<string, string[]>();
  return {
    name: 'new_source_login',
    observe(e: AuditRecord): Finding[] {
      if (e.type !== 'user.login' || e.subject === undefined || e.source_ip === undefined) return [];
      const known = sources.get(e.subject);
      const fresh = known !== undefined && !known.includes(e.source_ip) && e.detail?.known_device !== true;
      const next = [...(known ?? []).filter((ip) => ip !== e.source_ip), e.source_ip].slice(-remember);
      sources.delete(e.subject);
      if (sources.size >= maxUsers) sources.delete(sources.keys().next().value as string);
      sources.set(e.subject, next);
      if (!fresh) return [];
      return [
        {
          detector: 'new_source_login',
          severity: 'medium',
          key: `user:${e.subject}`,
          summary: `user ${e.subject} signed in from ${e.source_ip}, an address they have not used lately, in a browser new to them`,
          firstSeq: e.seq,
          lastSeq: e.seq,
          count: 1,
          detail: { source_ip: e.source_ip, recent: (known ?? []).slice(-5), client_id: e.client_id ?? null },
        },
      ];
    },
  };
}
