import { createHash } from 'node:crypto';

/** The prev_hash of the first chained event. */
export const GENESIS = 'genesis';

/**
 * The hash of one audit event in the chain: SHA-256 over the previous event's hash and the
 * event's stored values, its seq included, so an edited, inserted, reordered or deleted event
 * breaks every hash after it. `values` are the stored columns in AUDIT_COLUMNS order.
 */
export function chainHash(prevHash: string, seq: number, values: readonly unknown[]): string {
  return createHash('sha256')
    .update(prevHash)
    .update('\n')
    .update(JSON.stringify([seq, ...values]))
    .digest('base64url');
}
