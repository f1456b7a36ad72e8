// Token Status List (issue 17): what building one list costs the IdP — the revoked indices from
// storage, the bit array, ZLIB at level 9 and the signature — beside its two parts alone, at
// 100k and 1M entries with 1% of them revoked (each by its own token revocation, the worst case
// for the query), on SQLite; and how large the served list is.
import { generateKeyPairSync, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressStatusList, setInvalid, signJws, systemClock } from '@latchkey/protocol';
import { SqliteStorage, type TokenStatusRecord } from '@latchkey/server';
import { statusJti, statusOfJti } from '../packages/server/src/status/status_jti.ts';
import { StatusLists } from '../packages/server/src/status/status_lists.ts';

const ISS = 'https://idp.bench';

export interface StatusListSample {
  entries: number;
  revoked: number;
  /** Median ms of: the whole build, the storage query alone, compression alone. */
  buildMs: number;
  queryMs: number;
  compressMs: number;
  jwsBytes: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const time = async (fn: () => unknown): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

export async function benchStatusListBuild(
  sizes: number[] = [100_000, 1_000_000],
  rounds = 5,
): Promise<StatusListSample[]> {
  const out: StatusListSample[] = [];
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  for (const n of sizes) {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-sl-'));
    const s = new SqliteStorage(join(dir, 'latchkey.db'));
    try {
      await s.migrate();
      const { listId } = await s.allocateStatusIndices(n, n, 3600);
      const now = Math.floor(Date.now() / 1000);
      const batch: TokenStatusRecord[] = [];
      const jtis: string[] = [];
      for (let idx = 0; idx < n; idx++) {
        jtis.push(statusJti(listId, idx));
        batch.push({
          listId,
          idx,
          jti: jtis[idx] as string,
          originJti: null,
          clientId: `c${idx % 50}`,
          sub: `c${idx % 50}`,
          kid: 'k1',
          iat: now,
        });
        if (batch.length === 10_000) await s.appendAuditEvents([], batch.splice(0));
      }
      if (batch.length) await s.appendAuditEvents([], batch.splice(0));
      const revoked = new Set<number>();
      while (revoked.size < n / 100) revoked.add(randomInt(n));
      for (const idx of revoked)
        await s.appendFeedEvent({
          stream: 'revocations',
          kind: 'token',
          iss: ISS,
          ref: jtis[idx] as string,
          notBefore: null,
          expiresAt: now + 300,
          createdAt: now,
          data: null,
        });
      // The IdP's own StatusLists (a new one each time: no cached list), signing with a P-256 key.
      const keys = {
        signDocument: (payload: object, typ: string) => {
          const input = `${Buffer.from(JSON.stringify({ alg: 'ES256', typ, kid: 'k1' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
          return { jws: `${input}.${signJws('ES256', privateKey, input)}`, kid: 'k1' };
        },
      };
      const lists = () =>
        new StatusLists({
          clock: systemClock,
          issuer: ISS,
          listSize: n,
          ttl: 60,
          lifetime: 900,
          tokenCover: 3600,
          keys,
          store: s,
        });
      const build = async () => (await lists().token(listId))?.jws as string;
      // What the query part reads: entries covered by revocations, and single-token revocations' entries.
      const query = async () => {
        await s.revokedStatusIndices(ISS, listId);
        const named = (await s.revokedTokenJtis(ISS)).map((j) => statusOfJti(j)?.idx ?? -1);
        await s.tokenStatusesAt(listId, named);
      };
      const jws = await build();
      const bytes = new Uint8Array(Math.ceil(n / 8));
      for (const i of revoked) setInvalid(bytes, i);
      const b: number[] = [];
      const q: number[] = [];
      const c: number[] = [];
      for (let r = 0; r < rounds; r++) {
        b.push(await time(build));
        q.push(await time(query));
        c.push(await time(() => compressStatusList(bytes)));
      }
      out.push({
        entries: n,
        revoked: revoked.size,
        buildMs: median(b),
        queryMs: median(q),
        compressMs: median(c),
        jwsBytes: jws.length,
      });
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}
