import type { Clock } from '@latchkey/protocol';
import type { RevocationLog } from '../revocation/revocation_log.ts';
import type { AuditEvent } from '@latchkey/protocol';
import type { ServerEvents } from '../events.ts';
import type { AlertRecord, AlertStore, ClientStore } from '../storage/ports.ts';
import type { Finding } from './detectors/index.ts';

export interface AlertRaiserDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  store: Pick<AlertStore, 'insertAlert'>;
  clients: Pick<ClientStore, 'lockClient'>;
  revocations: Pick<RevocationLog, 'revokeNotBefore'>;
  events: ServerEvents;
  /** Seconds during which the same detector and key raise no second alert. */
  cooldown: number;
  /** Detectors whose alerts lock the client they name, and for how long. */
  lock: { detectors: readonly string[]; seconds: number };
  /** Where stored alerts go next (webhooks). */
  deliver?: (alert: AlertRecord) => void;
}

/**
 * Turns findings into alerts: drops repeats within the cooldown, stores the alert, writes
 * `alert.raised` to the audit log, takes the configured response (locking the client, itself
 * audited as `client.locked`), and hands the alert to delivery.
 */
export class AlertRaiser {
  private readonly recent = new Map<string, number>();
  /** Findings dropped as repeats within the cooldown. */
  suppressed = 0;
  private readonly deps: AlertRaiserDeps;

  constructor(deps: AlertRaiserDeps) {
    this.deps = deps;
  }

  async raise(f: Finding): Promise<AlertRecord | undefined> {
    const now = this.deps.clock.now();
    const id = `${f.detector}|${f.key}`;
    const last = this.recent.get(id);
    if (last !== undefined && now - last < this.deps.cooldown * 1000) {
      this.suppressed++;
      return undefined;
    }
    this.recent.delete(id);
    if (this.recent.size >= 100_000) this.recent.delete(this.recent.keys().next().value as string);
    this.recent.set(id, now);

    // Automated responses act on what the IdP observed — or on a service's reports about its own
    // identity only: one client's reports never lock another (docs/security.md).
    const evidenceOk = f.reportedBy === undefined || (f.reportedBy.length === 1 && f.reportedBy[0] === f.clientId);
    const lockUntil =
      f.clientId !== undefined && evidenceOk && this.deps.lock.detectors.includes(f.detector)
        ? Math.floor(now / 1000) + this.deps.lock.seconds
        : undefined;
    let raised: AuditEvent | undefined;
    const alert = await this.deps.store.insertAlert(
      {
        time: new Date(now).toISOString(),
        detector: f.detector,
        severity: f.severity,
        key: f.key,
        summary: f.summary,
        firstSeq: f.firstSeq,
        lastSeq: f.lastSeq,
        count: f.count,
        detail: f.detail,
        response:
          lockUntil !== undefined
            ? `locked client ${f.clientId} until ${new Date(lockUntil * 1000).toISOString()}`
            : null,
      },
      (a) => [
        (raised = this.deps.events.stage('alert.raised', {
          actor: 'system',
          subject: f.key,
          outcome: 'success',
          reason: f.detector,
          ...(f.clientId !== undefined ? { client_id: f.clientId } : {}),
          detail: {
            alert_id: a.id,
            severity: f.severity,
            summary: f.summary,
            first_seq: f.firstSeq,
            last_seq: f.lastSeq,
            count: f.count,
          },
        })),
      ],
    );
    this.deps.events.committed(raised!);
    if (lockUntil !== undefined) {
      const locked = this.deps.events.stage('client.locked', {
        actor: 'system',
        subject: f.clientId!,
        client_id: f.clientId!,
        outcome: 'success',
        reason: f.detector,
        detail: { alert_id: alert.id, until: new Date(lockUntil * 1000).toISOString() },
      });
      // A lock also takes back what the client holds: every token issued before it is revoked (a
      // client not-before entry, which services and open feed streams act on at once); with the
      // lock in force no new token, certificate renewal or feed connection is granted.
      await this.deps.revocations.revokeNotBefore('client', f.clientId!, [locked]);
      this.deps.events.committed(locked);
      await this.deps.clients.lockClient(f.clientId!, lockUntil);
    }
    this.deps.deliver?.(alert);
    return alert;
  }
}
