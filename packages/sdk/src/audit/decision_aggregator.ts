import type { ReportedEvent } from '@latchkey/protocol';

/** Why decisions were counted rather than sent one by one. */
export type AggregateReason = 'rate' | 'backlog';

interface Row {
  outcome: ReportedEvent['outcome'];
  actor: string;
  action: string;
  resourceType: string;
  policies: string[];
  version: number | null;
  why: AggregateReason;
  count: number;
}

/** `Ns::Order::"42"` → `Ns::Order`: the entity type of a Cedar entity reference. */
const entityType = (ref: string | undefined): string => {
  if (ref === undefined) return '*';
  const i = ref.indexOf('::"');
  return i > 0 ? ref.slice(0, i) : ref;
};

/**
 * Permission decisions counted per interval instead of sent one by one: per principal, outcome,
 * action, resource type, deciding policies, bundle version and why they were counted. Memory is
 * bounded: at most `maxRows` rows per interval (further keys share one overflow row per outcome
 * whose principal, action and resource type are `*`), and while `maxPending` closed intervals'
 * events wait to be sent the current interval stays open (its end moves on) rather than closing
 * another. No decision is ever lost here; a count only becomes coarser.
 */
export class DecisionAggregator {
  private rows = new Map<string, Row>();
  private start: number;
  private readonly pending: ReportedEvent[] = [];
  private readonly o: { intervalMs: number; maxRows: number; maxPending: number; now: () => number };
  /** Decisions counted so far (since creation). */
  counted = 0;

  constructor(o: { intervalMs: number; maxRows: number; maxPending: number; now: () => number }) {
    this.o = o;
    this.start = o.now();
  }

  /** Counts one decision event (an `authz.decision` as the authorizer reports it). */
  add(e: ReportedEvent, why: AggregateReason): void {
    this.counted++;
    const d = e.detail ?? {};
    const policies = Array.isArray(d.policies) ? (d.policies as string[]) : [];
    const version = typeof d.policy_version === 'number' ? d.policy_version : null;
    const action = typeof d.action === 'string' ? d.action : '*';
    const resourceType = entityType(e.target);
    // One string per row, NUL-separated (a busy service counts thousands a second: no JSON here).
    // Principal and action are Cedar references with their ids JSON-escaped, so they hold no NUL;
    // a policy id that does (an @id annotation could) falls back to JSON for the list.
    const list = policies.some((p) => p.includes('\u0000')) ? JSON.stringify(policies) : policies.join('\u0000');
    const key = `${e.outcome}\u0000${why}\u0000${version}\u0000${e.actor}\u0000${action}\u0000${resourceType}\u0000\u0000${list}`;
    const r = this.rows.get(key);
    if (r) {
      r.count++;
      return;
    }
    if (this.rows.size < this.o.maxRows) {
      this.rows.set(key, {
        outcome: e.outcome,
        actor: e.actor,
        action,
        resourceType,
        policies,
        version,
        why,
        count: 1,
      });
      return;
    }
    // Past the bound: one overflow row per outcome and reason.
    const overflow = `${e.outcome}\u0000${why}\u0000*`;
    const o = this.rows.get(overflow);
    if (o) o.count++;
    else
      this.rows.set(overflow, {
        outcome: e.outcome,
        actor: '*',
        action: '*',
        resourceType: '*',
        policies: [],
        version: null,
        why,
        count: 1,
      });
  }

  /** Closes the interval once it is due (and the pending events have room); `force` closes it now. */
  roll(force = false): void {
    const now = this.o.now();
    if (this.rows.size === 0) {
      this.start = now;
      return;
    }
    if (!force && (now - this.start < this.o.intervalMs || this.pending.length >= this.o.maxPending)) return;
    const from = new Date(this.start).toISOString();
    const to = new Date(now).toISOString();
    for (const r of this.rows.values())
      this.pending.push({
        type: 'authz.decisions',
        outcome: r.outcome,
        actor: r.actor,
        time: to,
        reason: r.why === 'rate' ? 'above the individual allow rate' : 'the audit queue was full',
        detail: {
          count: r.count,
          from,
          to,
          action: r.action,
          resource_type: r.resourceType,
          policies: r.policies,
          policy_version: r.version,
          why: r.why,
        },
      });
    this.rows = new Map();
    this.start = now;
  }

  /** Closed intervals' events waiting to be sent. */
  peek(n: number): ReportedEvent[] {
    return this.pending.slice(0, n);
  }

  /** Removes the first `n` waiting events (they were accepted). */
  shift(n: number): void {
    this.pending.splice(0, n);
  }

  get waiting(): number {
    return this.pending.length;
  }
}
