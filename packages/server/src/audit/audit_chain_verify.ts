import { parseCompactJws, verifyJws } from '@latchkey/protocol';
import type { KeyRing } from '../keys/key_ring.ts';
import { chainHash, GENESIS } from '../storage/audit_chain.ts';
import type { AuditCheckpoint, AuditStore } from '../storage/ports.ts';
import { auditParams } from '../storage/rows.ts';

export const CHECKPOINT_TYP = 'latchkey-audit-checkpoint+jwt';

export type ChainProblem =
  /** A stored event's content does not match its hash: edited, or swapped with another (reordered). */
  | 'content_changed'
  /** An event's prev_hash is not its predecessor's hash: an event was inserted or moved here. */
  | 'chain_broken'
  /** A seq is missing: an event was deleted. */
  | 'missing'
  /** A signed checkpoint disagrees with the chain at its seq: the chain was rewritten. */
  | 'checkpoint_mismatch'
  /** A checkpoint's signature does not verify with the key it names. */
  | 'checkpoint_signature_invalid';

export interface ChainReport {
  ok: boolean;
  /** Chained events checked. */
  checked: number;
  head: { seq: number; hash: string } | null;
  /** Set when older events were pruned: the chain starts after this signed anchor. */
  prunedThrough?: number;
  /** The first bad position, when not ok. */
  firstBad?: { seq: number; problem: ChainProblem };
  checkpoints: { total: number; verified: number; unverifiable: number };
  /** Checkpoints given from outside the database (an exported file), each compared with the chain. */
  external?: { total: number; verified: number; unverifiable: number };
}

/** Where the events come from: the database, or an export read back. Oldest first, after `after`. */
export type ChainSource = Pick<AuditStore, 'queryAuditEvents' | 'listAuditCheckpoints'>;

/**
 * Walks the whole chain in seq order and names the first bad position: an edited, reordered,
 * inserted or deleted event each break it. Signed checkpoints catch a chain that was rewritten
 * consistently by someone without the signing key.
 */
export async function verifyAuditChain(
  store: ChainSource,
  keys: Pick<KeyRing, 'publishedKey'>,
  externalCheckpoints: AuditCheckpoint[] = [],
): Promise<ChainReport> {
  const checkpoints = await store.listAuditCheckpoints();
  const pinned = new Map(checkpoints.map((c) => [c.seq, c]));
  // Checkpoints kept outside the database: a chain rewritten together with the checkpoint table
  // (or with that table deleted) still disagrees with them.
  const outside = new Map(externalCheckpoints.map((c) => [c.seq, c]));
  const report: ChainReport = {
    ok: true,
    checked: 0,
    head: null,
    checkpoints: { total: checkpoints.length, verified: 0, unverifiable: 0 },
  };
  if (externalCheckpoints.length > 0)
    report.external = { total: externalCheckpoints.length, verified: 0, unverifiable: 0 };
  const fail = (seq: number, problem: ChainProblem): ChainReport => ({
    ...report,
    ok: false,
    firstBad: { seq, problem },
  });

  for (const [list, counts] of [
    [checkpoints, report.checkpoints],
    [externalCheckpoints, report.external],
  ] as const) {
    for (const c of list) {
      const jws = parseCompactJws(c.signature);
      const key = keys.publishedKey(c.kid);
      if (!jws || !key) {
        // The key that signed it may have been rotated out; the chain itself is still checked.
        counts!.unverifiable++;
        continue;
      }
      const p = jws.payload as { seq?: unknown; hash?: unknown };
      if (
        jws.header.typ !== CHECKPOINT_TYP ||
        jws.header.alg !== key.alg ||
        !verifyJws(key.alg, key.publicKey, jws.signingInput, jws.signature) ||
        p.seq !== c.seq ||
        p.hash !== c.hash
      ) {
        return fail(c.seq, 'checkpoint_signature_invalid');
      }
      counts!.verified++;
    }
  }
  let first: number | undefined;

  let prev: string | undefined;
  let expected: number | undefined;
  let after = 0;
  // After retention pruning the chain starts at a checkpointed anchor, which an `audit.pruned`
  // event inside the chain must name; a start anywhere else means the beginning was deleted.
  let anchor: { seq: number; hash: string; confirmed: boolean } | undefined;
  for (;;) {
    const page = await store.queryAuditEvents({ after, limit: 1000 });
    if (page.length === 0) break;
    for (const r of page) {
      after = r.seq;
      if (r.hash === null && prev === undefined) continue; // written before the chain existed
      if (expected === undefined) {
        // The chain's first event must start from the genesis value.
        if (r.prevHash !== GENESIS) {
          const cp = pinned.get(r.seq - 1);
          if (!cp || cp.hash !== r.prevHash) return fail(r.seq - 1, 'missing');
          anchor = { seq: cp.seq, hash: cp.hash, confirmed: false };
        }
      } else if (r.seq !== expected) return fail(expected, 'missing');
      else if (r.prevHash !== prev) return fail(r.seq, 'chain_broken');
      if (r.hash === null || chainHash(r.prevHash as string, r.seq, auditParams(r)) !== r.hash)
        return fail(r.seq, 'content_changed');
      const cp = pinned.get(r.seq);
      if (cp && cp.hash !== r.hash) return fail(r.seq, 'checkpoint_mismatch');
      const ext = outside.get(r.seq);
      if (ext && ext.hash !== r.hash) return fail(r.seq, 'checkpoint_mismatch');
      first ??= r.seq;
      if (anchor && r.type === 'audit.pruned' && r.detail?.through_seq === anchor.seq && r.detail?.hash === anchor.hash)
        anchor.confirmed = true;
      prev = r.hash;
      expected = r.seq + 1;
      report.checked++;
      report.head = { seq: r.seq, hash: r.hash };
    }
  }
  if (anchor && !anchor.confirmed) return fail(anchor.seq, 'missing');
  if (anchor) report.prunedThrough = anchor.seq;
  // A checkpoint beyond the head: events after it were deleted.
  const beyond = [...checkpoints, ...externalCheckpoints].find((c) => report.head === null || c.seq > report.head.seq);
  if (beyond) return fail(report.head ? report.head.seq + 1 : beyond.seq, 'missing');
  // An outside checkpoint before the chain's start that no signed prune anchor accounts for.
  const before = externalCheckpoints.find(
    (c) => first !== undefined && c.seq < first && c.seq > (report.prunedThrough ?? 0),
  );
  if (before) return fail(before.seq, 'missing');
  return report;
}
