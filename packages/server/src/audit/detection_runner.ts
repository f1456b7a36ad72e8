import type { Clock } from '@latchkey/protocol';
import { Leadership, Passes } from '../passes.ts';
import type { AuditRecord, AuditStore, LeaseStore, SettingsStore } from '../storage/ports.ts';
import type { AlertRaiser } from './alert_raiser.ts';
import type { Detector } from './detectors/index.ts';

const LEASE = 'audit-detection';
const CURSOR = 'audit.detection_cursor';
const NUDGE_DELAY_MS = 100;
const PAGE = 1000;
/** Most rows appended here that wait in memory for the next pass; past it they are read from the log. */
const MAX_LOCAL = 50_000;

export interface DetectionRunnerDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  store: Pick<AuditStore, 'queryAuditEvents' | 'auditHead'> &
    Pick<LeaseStore, 'tryLease'> &
    Pick<SettingsStore, 'getSetting' | 'setSetting'>;
  detectors: Detector[];
  raiser: Pick<AlertRaiser, 'raise'>;
  /** Seconds between passes (each local commit also triggers one). */
  interval: number;
  onError: (err: unknown) => void;
}

/**
 * Feeds committed audit events to the detectors, in log order, from a cursor kept in storage. One
 * replica at a time holds the lease, so it sees every replica's events (they share one log) and
 * each alert is raised once. A new deployment starts at the log's head, not its history.
 *
 * The rows this replica appends reach the runner in memory (`appended`, wired to the storage's
 * `onAuditAppended`), so the leader does not read back what it has just written; rows between
 * them (other replicas', or any dropped from memory) are read from the log by seq, so the
 * detectors still see one gapless sequence in log order.
 */
export class DetectionRunner {
  private cursor: number | undefined;
  private readonly passes: Passes;
  private readonly leadership: Leadership;
  private readonly deps: DetectionRunnerDeps;
  /** Rows this replica appended since the last pass (only while it holds the lease). */
  private local: AuditRecord[] = [];

  constructor(deps: DetectionRunnerDeps) {
    this.deps = deps;
    this.passes = new Passes(() => this.passOnce(), deps.onError, { nudgeDelayMs: NUDGE_DELAY_MS });
    this.leadership = new Leadership({
      store: deps.store,
      name: LEASE,
      holdMs: Math.max(deps.interval * 3, 10) * 1000,
      clock: deps.clock,
    });
  }

  /**
   * A pass soon (within 100 ms): called after every committed event, so under load passes come
   * at most ten times a second, each reading every event since the last, instead of one per event.
   */
  readonly nudge = (): void => this.passes.nudge();

  /** Rows this process appended, once committed: kept for the next pass while this replica leads, and a pass soon. */
  readonly appended = (records: readonly AuditRecord[]): void => {
    if (this.passes.stopped) return;
    if (this.leadership.leading) {
      if (this.local.length + records.length > MAX_LOCAL) this.local = [];
      else for (const r of records) this.local.push(r);
    }
    this.nudge();
  };

  start(): void {
    this.passes.start(this.deps.interval * 1000);
  }

  /** One pass over everything committed since the cursor; passes never overlap. */
  pass(): Promise<void> {
    return this.passes.pass();
  }

  private async passOnce(): Promise<void> {
    if (!(await this.leadership.leads())) {
      this.local = [];
      this.cursor = undefined; // another replica runs detection; re-read the cursor if this one takes over
      return;
    }
    if (this.cursor === undefined) {
      const stored = await this.deps.store.getSetting(CURSOR);
      this.cursor = stored !== undefined ? Number(stored) : ((await this.deps.store.auditHead())?.seq ?? 0);
    }
    const start = this.cursor;
    const local = this.local;
    this.local = [];
    for (const r of local) {
      if (this.passes.stopped) return;
      const cursor = this.cursor ?? 0;
      if (r.seq <= cursor) continue; // read from the log already
      if (r.seq > cursor + 1) await this.readLog(r.seq - 1);
      if (r.seq > (this.cursor ?? 0)) await this.observe(r);
    }
    await this.readLog(Number.POSITIVE_INFINITY);
    if (this.cursor !== start && !this.passes.stopped) await this.deps.store.setSetting(CURSOR, String(this.cursor));
  }

  /** Feeds the log's rows after the cursor, through seq `through`, to the detectors. */
  private async readLog(through: number): Promise<void> {
    for (;;) {
      const cursor = this.cursor ?? 0;
      const limit = Math.min(PAGE, through - cursor);
      if (limit <= 0 || this.passes.stopped) return;
      const page = await this.deps.store.queryAuditEvents({ after: cursor, limit });
      for (const e of page) {
        if (this.passes.stopped) return;
        await this.observe(e);
      }
      if (page.length < limit) return;
      await this.deps.store.setSetting(CURSOR, String(this.cursor));
    }
  }

  private async observe(e: AuditRecord): Promise<void> {
    for (const d of this.deps.detectors) {
      for (const f of d.observe(e)) await this.deps.raiser.raise(f);
    }
    this.cursor = e.seq;
  }

  stop(): Promise<void> {
    return this.passes.stop();
  }
}
