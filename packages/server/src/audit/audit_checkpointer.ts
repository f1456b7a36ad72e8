import type { Clock } from '@latchkey/protocol';
import type { KeyRing } from '../keys/key_ring.ts';
import type { AuditCheckpoint, AuditStore } from '../storage/ports.ts';
import { CHECKPOINT_TYP } from './audit_chain_verify.ts';

/**
 * Signs the chain's head now and then (a checkpoint), so that a chain rewritten from some point on
 * — hashes recomputed and all — no longer matches what the IdP signed. Checkpoints can be exported
 * to a place the database's owner cannot write.
 */
export class AuditCheckpointer {
  private timer: NodeJS.Timeout | undefined;
  private readonly store: Pick<AuditStore, 'auditHead' | 'addAuditCheckpoint' | 'listAuditCheckpoints'>;
  private readonly keys: Pick<KeyRing, 'signDocument'>;
  private readonly issuer: string;
  private readonly clock: Clock;
  private readonly sink?: (checkpoint: AuditCheckpoint) => Promise<void>;

  constructor(
    store: Pick<AuditStore, 'auditHead' | 'addAuditCheckpoint' | 'listAuditCheckpoints'>,
    keys: Pick<KeyRing, 'signDocument'>,
    issuer: string,
    clock: Clock,
    /** Where each checkpoint also goes as it is made, out of the database's reach (LATCHKEY_AUDIT_CHECKPOINT_FILE). */
    sink?: (checkpoint: AuditCheckpoint) => Promise<void>,
  ) {
    this.store = store;
    this.keys = keys;
    this.issuer = issuer;
    this.clock = clock;
    this.sink = sink;
  }

  /** Signs the current head unless it is already checkpointed; returns its seq. */
  async checkpoint(): Promise<number | undefined> {
    const head = await this.store.auditHead();
    if (!head) return undefined;
    await this.checkpointAt(head.seq, head.hash);
    return head.seq;
  }

  /** Signs the chain at one position (the anchor a prune leaves behind). */
  async checkpointAt(seq: number, hash: string): Promise<void> {
    const time = new Date(this.clock.now()).toISOString();
    const { jws, kid } = this.keys.signDocument({ iss: this.issuer, seq, hash, time }, CHECKPOINT_TYP);
    const checkpoint = { seq, hash, time, kid, signature: jws };
    await this.store.addAuditCheckpoint(checkpoint);
    await this.sink?.(checkpoint);
  }

  start(intervalSeconds: number, onError: (err: unknown) => void): void {
    this.timer = setInterval(() => void this.checkpoint().catch(onError), intervalSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/**
 * A checkpoint sink that appends each checkpoint to a file as one JSON line, flushed to disk
 * before the checkpoint counts as made — the file `latchkey audit verify --checkpoints` reads.
 */
export function fileCheckpointSink(path: string): (checkpoint: AuditCheckpoint) => Promise<void> {
  return async (checkpoint) => {
    const { open } = await import('node:fs/promises');
    const f = await open(path, 'a', 0o600);
    try {
      await f.write(`${JSON.stringify(checkpoint)}\n`);
      await f.datasync();
    } finally {
      await f.close();
    }
  };
}
