import type { AuditRecord } from '../../storage/ports.ts';
import { eventMs, type Detector, type Finding } from './types.ts';

interface Attempt {
  at: number;
  seq: number;
  ok: boolean;
  user: string;
  ip: string;
}

/**
 * Credential stuffing: pairs leaked elsewhere tried across many users from many addresses, each
 * address and user seen only a few times (so no per-address or per-user count trips), with a low
 * success rate. Watches every sign-in in a sliding window: fires when `failures` failed sign-ins
 * span at least a quarter as many users and addresses and fewer than one attempt in ten
 * succeeded. Counts are kept incrementally, at most 20,000 attempts.
 */
export function credentialStuffing(options: { failures: number; windowSeconds: number }): Detector {
  const windowMs = options.windowSeconds * 1000;
  const attempts: Attempt[] = [];
  const failedUsers = new Map<string, number>();
  const failedIps = new Map<string, number>();
  let failures = 0;
  let successes = 0;
  const bump = (m: Map<string, number>, k: string, d: number) => {
    const n = (m.get(k) ?? 0) + d;
    if (n <= 0) m.delete(k);
    else m.set(k, n);
  };
  const drop = (a: Attempt) => {
    if (a.ok) successes--;
    else {
      failures--;
      bump(failedUsers, a.user, -1);
      bump(failedIps, a.ip, -1);
    }
  };
  return {
    name: 'credential_stuffing',
    observe(e: AuditRecord): Finding[] {
      if (e.type !== 'user.login' && e.type !== 'user.login_failed') return [];
      if (e.type === 'user.login_failed' && e.reason === 'locked') return [];
      const at = eventMs(e);
      while (attempts.length > 0 && ((attempts[0] as Attempt).at <= at - windowMs || attempts.length >= 20_000))
        drop(attempts.shift() as Attempt);
      const a: Attempt = {
        at,
        seq: e.seq,
        ok: e.type === 'user.login',
        user: typeof e.detail?.username === 'string' ? e.detail.username : (e.subject ?? '?'),
        ip: e.source_ip ?? '?',
      };
      attempts.push(a);
      if (a.ok) {
        successes++;
        return [];
      }
      failures++;
      bump(failedUsers, a.user, 1);
      bump(failedIps, a.ip, 1);
      const spread = Math.ceil(options.failures / 4);
      if (failures < options.failures || failedUsers.size < spread || failedIps.size < spread) return [];
      if (successes * 10 >= failures + successes) return [];
      const finding: Finding = {
        detector: 'credential_stuffing',
        severity: 'high',
        key: 'sign-ins',
        summary: `${failures} failed sign-ins for ${failedUsers.size} users from ${failedIps.size} addresses within ${options.windowSeconds}s, ${successes} succeeded`,
        firstSeq: (attempts[0] as Attempt).seq,
        lastSeq: e.seq,
        count: failures,
        detail: { users: failedUsers.size, addresses: failedIps.size, successes },
      };
      // Start again: the next alert needs a new wave.
      attempts.length = 0;
      failedUsers.clear();
      failedIps.clear();
      failures = 0;
      successes = 0;
      return [finding];
    },
  };
}
