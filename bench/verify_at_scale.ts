// Issue 18: the SDK's whole verify() with 0 and 1,000,000 revocation entries held, each set
// delivered the way a service gets it — the real IdP's revocation feed, paged at start — beside
// each other. The entries are written into the IdP's feed table in one transaction (revoking a
// million tokens through /revoke would take the benchmark's whole budget).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createVerifier, type Verifier } from '@latchkey/sdk/verify';
import { basicAuth, startTestIdp } from '@latchkey/testkit';
import { heapAndBuffers } from './cpu.ts';

const heap = heapAndBuffers;

/** verify() calls per second over `tokens` in turn for `ms` (awaited one by one, as a request handler would). */
async function rate(v: Verifier, tokens: string[], ms: number): Promise<number> {
  let n = 0;
  const until = performance.now() + ms;
  while (performance.now() < until) {
    for (let i = 0; i < 1000; i++) await v.verify(tokens[(n + i) % tokens.length]!);
    n += 1000;
  }
  return n / (ms / 1000);
}

export async function benchVerifyAtScale(entries = 1_000_000, ms = 2000) {
  const t = await startTestIdp({ config: { feedMaxPage: 10_000 } });
  try {
    const c = await t.register({ audiences: ['https://orders.internal'] });
    // More tokens than the fresh verifier remembers (1): every one of its calls checks a signature.
    const tokens: string[] = [];
    for (let i = 0; i < 2000; i++)
      tokens.push(
        (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth(c as never) })).body
          .access_token as string,
      );
    const options = {
      issuer: t.issuer,
      audience: 'https://orders.internal',
      credentials: { clientId: c.client_id, clientSecret: c.client_secret },
      fetch: t.fetch,
      statusList: 'off' as const,
    };
    const rows: { entries: number; catchUpSeconds: number; heapMiB: number; cached: number; fresh: number }[] = [];
    for (const n of [0, entries]) {
      if (n > 0) {
        const db = new Database(join(t.dataDir, 'latchkey.db'));
        db.pragma('busy_timeout = 10000');
        const now = Math.floor(Date.now() / 1000);
        const insert = db.prepare(
          "INSERT INTO feed_events (stream, kind, iss, ref, expires_at, created_at) VALUES ('revocations', 'token', ?, ?, ?, ?)",
        );
        db.transaction(() => {
          for (let i = 0; i < n; i++) insert.run(t.issuer, randomBytes(12).toString('base64url'), now + 3600, now);
        })();
        db.close();
      }
      const before = heap();
      const t0 = performance.now();
      const cached = await createVerifier(options);
      const catchUpSeconds = (performance.now() - t0) / 1000;
      const heapMiB = (heap() - before) / 1024 / 1024;
      if (cached.health().revocations.entries !== n) throw new Error(`${cached.health().revocations.entries} of ${n}`);
      // A verifier that remembers one token: over 2,000 tokens in turn, every call verifies anew.
      const fresh = await createVerifier({ ...options, cacheSize: 1 });
      rows.push({
        entries: n,
        catchUpSeconds,
        heapMiB,
        cached: await rate(cached, tokens.slice(0, 1), ms),
        fresh: await rate(fresh, tokens, ms),
      });
      cached.close();
      fresh.close();
    }
    return rows;
  } finally {
    await t.close();
  }
}
