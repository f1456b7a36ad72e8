// Issue 18: the SDK holding 100k and 1M revocation entries — its memory (heap after a GC) and
// the revocation check on the verification path, beside the same check with no entries. The
// entries are made as the feed delivers them: parsed from JSON, one object each.
import { randomBytes } from 'node:crypto';
import { RevocationSet } from '../packages/sdk/src/verify/revocation_set.ts';
import { heapAndBuffers } from './cpu.ts';

const heap = heapAndBuffers;

/** Checks per second of one claims set (not revoked: every map is consulted), over `ms`. */
function checksPerSecond(set: RevocationSet, ms: number): number {
  const claims = { jti: randomBytes(12).toString('base64url'), iat: 1, sub: 'orders', client_id: 'orders' };
  let n = 0;
  const until = performance.now() + ms;
  while (performance.now() < until) {
    for (let i = 0; i < 10_000; i++) if (set.check('kid-1', claims) !== undefined) throw new Error('revoked?');
    n += 10_000;
  }
  return n / (ms / 1000);
}

export function benchRevocationMemory(sizes: number[] = [100_000, 1_000_000], ms = 2000) {
  const empty = new RevocationSet('https://idp');
  const baseline = checksPerSecond(empty, ms);
  const out: { entries: number; heapMiB: number; bytesPerEntry: number; checksPerSecond: number; vsEmpty: number }[] =
    [];
  for (const n of sizes) {
    const before = heap();
    const set = new RevocationSet('https://idp');
    const now = Math.floor(Date.now() / 1000);
    for (let i = 0; i < n; i++) {
      const e = JSON.parse(
        `{"cursor":"${i}","kind":"token","iss":"https://idp","ref":"${randomBytes(12).toString('base64url')}","expires_at":${now + 300},"revoked_at":${now}}`,
      );
      set.apply(e);
    }
    const used = heap() - before;
    const rate = checksPerSecond(set, ms);
    out.push({
      entries: n,
      heapMiB: used / 1024 / 1024,
      bytesPerEntry: used / n,
      checksPerSecond: rate,
      vsEmpty: rate / baseline,
    });
    if (set.size !== n) throw new Error('entries lost');
  }
  return { baseline, rows: out };
}
