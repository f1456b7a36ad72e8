import type { Clock } from '@latchkey/protocol';
import type { StatusListStore } from '../storage/ports.ts';

/** Indices a replica reserves at a time: one small transaction per block, not per token. */
export const STATUS_BLOCK = 1024;
/**
 * Seconds a reserved block may be drawn from: a quiet replica does not hand out indices of a list
 * long after the list was closed, so a list's last token expires at most this long after its last
 * reservation plus the token lifetime (when its entries are purged).
 */
export const STATUS_BLOCK_MAX_AGE = 60;

interface Block {
  listId: number;
  next: number;
  end: number;
  reservedAt: number;
}

/**
 * Hands out Token Status List indices (draft-ietf-oauth-status-list §13.4: never the same
 * `uri` and `idx` twice) from blocks reserved in storage, so replicas never collide and the token
 * path waits for storage once per block at most. The next block is reserved while half of the
 * current one is left; indices of a block a replica never finished (it stopped, or the block grew
 * older than a minute) stay unused, which the list shows as VALID like any unused index (§13.3).
 */
export class StatusIndices {
  private block: Block | undefined;
  private spare: Block | undefined;
  private reserving: Promise<void> | undefined;
  private readonly store: Pick<StatusListStore, 'allocateStatusIndices'>;
  private readonly listSize: number;
  private readonly blockSize: number;
  private readonly coverSeconds: number;
  private readonly clock: Clock;

  constructor(
    store: Pick<StatusListStore, 'allocateStatusIndices'>,
    listSize: number,
    /** Longest lifetime of a token that gets an index (with clock skew). */
    tokenCover: number,
    clock: Clock,
  ) {
    this.store = store;
    this.listSize = listSize;
    this.blockSize = Math.min(STATUS_BLOCK, listSize);
    this.coverSeconds = STATUS_BLOCK_MAX_AGE + tokenCover;
    this.clock = clock;
  }

  /** The next unused (list, index). */
  async next(): Promise<{ listId: number; idx: number }> {
    for (;;) {
      const stale = this.clock.now() - STATUS_BLOCK_MAX_AGE * 1000;
      if (this.block && this.block.reservedAt < stale) this.block = undefined;
      if (this.spare && this.spare.reservedAt < stale) this.spare = undefined;
      const b = this.block;
      if (b && b.next < b.end) {
        const idx = b.next++;
        if (!this.spare && b.end - b.next <= this.blockSize / 2) void this.reserve().catch(() => undefined);
        return { listId: b.listId, idx };
      }
      if (this.spare) {
        this.block = this.spare;
        this.spare = undefined;
        continue;
      }
      await this.reserve();
    }
  }

  /** Reserves one block into `spare` (one reservation at a time; callers share it). */
  private reserve(): Promise<void> {
    const reservedAt = this.clock.now();
    this.reserving ??= this.store
      .allocateStatusIndices(this.blockSize, this.listSize, this.coverSeconds)
      .then(({ listId, first }) => {
        this.spare = { listId, next: first, end: first + this.blockSize, reservedAt };
      })
      .finally(() => {
        this.reserving = undefined;
      });
    return this.reserving;
  }
}
