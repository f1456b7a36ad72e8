import { RandomPool } from '../random_pool.ts';

const pool = new RandomPool();

/**
 * The `jti` of a token with a Token Status List entry names that entry: 5 random bytes, the list
 * (4 bytes) and the index (3 bytes), base64url — 16 characters, like a 96-bit random jti, and
 * unique because no (list, index) is handed out twice. A revocation that knows only a jti (a
 * refresh family's tokens, a withdrawn consent) then finds the token's bit without an index over
 * every token's jti, which would cost every issuance a write at a random place in a B-tree. A jti
 * that was minted otherwise decodes to some (list, index) too: callers confirm the jti stored there.
 */
export function statusJti(listId: number, idx: number): string {
  const b = Buffer.allocUnsafe(12);
  pool.fill(b, 0, 5);
  b.writeUInt32BE(listId, 5);
  b.writeUIntBE(idx, 9, 3);
  return b.toString('base64url');
}

/** The (list, index) a jti would name, if it has the shape. */
export function statusOfJti(jti: string): { listId: number; idx: number } | undefined {
  if (jti.length !== 16 || !/^[A-Za-z0-9_-]+$/.test(jti)) return undefined;
  const b = Buffer.from(jti, 'base64url');
  return b.length === 12 ? { listId: b.readUInt32BE(5), idx: b.readUIntBE(9, 3) } : undefined;
}

/** Largest list index a jti can carry. */
export const MAX_STATUS_INDEX = 2 ** 24 - 1;
