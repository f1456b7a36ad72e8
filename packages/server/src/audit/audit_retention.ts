import type { Clock } from '@latchkey/protocol';
import type { ServerEvents } from '../events.ts';
import type { AuditStore } from '../storage/ports.ts';
import type { AuditCheckpointer } from './audit_checkpointer.ts';

export interface AuditRetentionDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  store: Pick<AuditStore, 'lastAuditSeqBefore' | 'queryAuditEvents' | 'pruneAuditEvents'>;
  checkpointer: Pick<AuditCheckpointer, 'checkpointAt'>;
  events: ServerEvents;
  /** Seconds to keep events; 0 keeps them forever. */
  retention: number;
}

/**
 * Prunes events older than the retention so that the chain survives: first a signed checkpoint
 * at the last event to go (the anchor the remaining chain starts from), then an `audit.pruned`
 * event — inside the chain, so later checkpoints cover it — naming that seq and hash, and only
 * then the delete. `latchkey audit verify` accepts a chain that starts at such an anchor and
 * nowhere else. A crash between the steps leaves a chain that still verifies.
 */
export class AuditRetention {
  private readonly deps: AuditRetentionDeps;

  constructor(deps: AuditRetentionDeps) {
    this.deps = deps;
  }

  /** Prunes what is older than the retention (or than `before`, RFC 3339); returns the events deleted. */
  async prune(options: { before?: string } = {}): Promise<{ pruned: number; throughSeq: number | null }> {
    const cutoff =
      options.before ??
      (this.deps.retention > 0
        ? new Date(this.deps.clock.now() - this.deps.retention * 1000).toISOString()
        : undefined);
    if (cutoff === undefined) return { pruned: 0, throughSeq: null };
    const through = await this.deps.store.lastAuditSeqBefore(cutoff);
    if (through === undefined) return { pruned: 0, throughSeq: null };
    const last = (await this.deps.store.queryAuditEvents({ after: through - 1, limit: 1 }))[0];
    if (!last || last.seq !== through) return { pruned: 0, throughSeq: null };
    if (last.hash !== null) await this.deps.checkpointer.checkpointAt(last.seq, last.hash);
    await this.deps.events.emit('audit.pruned', {
      actor: 'system',
      outcome: 'success',
      detail: { through_seq: through, hash: last.hash, before: cutoff },
    });
    return { pruned: await this.deps.store.pruneAuditEvents(through), throughSeq: through };
  }
}
