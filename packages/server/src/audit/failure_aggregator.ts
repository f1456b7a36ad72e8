import type { AuditEvent, AuditEventType } from '@latchkey/protocol';

/**
 * Failures anyone can cause without credentials — a wrong admin bearer, a request refused by the
 * rate limiter, a token request naming no or an unknown client — are counted, not written one by
 * one: the first of a kind from one source in a window is written at once, the rest are counted
 * and written as one event (`detail.aggregated: true`, `detail.count`, first and last time) when
 * the window closes. Keys are bounded; past the bound, sources are folded into one key per type
 * and reason. So unauthenticated traffic writes at most a bounded number of rows per window
 * instead of one per request (issue 11, finding 9). Failures against a real client's credentials
 * (bad_secret and the like) are each still one event.
 */
export class FailureAggregator {
  private readonly open = new Map<string, { first: AuditEvent; count: number; lastTime: string }>();
  private readonly timer: NodeJS.Timeout;
  private readonly write: (event: AuditEvent) => void;
  private readonly options: { windowMs?: number; maxKeys?: number };

  constructor(write: (event: AuditEvent) => void, options: { windowMs?: number; maxKeys?: number } = {}) {
    this.write = write;
    this.options = options;
    this.timer = setInterval(() => this.flush(), options.windowMs ?? 10_000);
    this.timer.unref();
  }

  /** Whether `e` is of a kind that is counted; then it is either passed on (first) or absorbed. */
  absorbs(e: AuditEvent): boolean {
    if (!aggregated(e.type, e.reason)) return false;
    let key = `${e.type}|${e.reason ?? ''}|${e.source_ip ?? ''}|${e.client_id ?? ''}`;
    let overflow = false;
    if (!this.open.has(key) && this.open.size >= (this.options.maxKeys ?? 1000)) {
      key = `${e.type}|${e.reason ?? ''}|*`;
      overflow = true;
    }
    const entry = this.open.get(key);
    if (!entry) {
      // Folded sources: the counted event names none of them.
      const first = overflow ? (({ source_ip: _s, client_id: _c, ...rest }) => rest)(e) : e;
      this.open.set(key, { first, count: overflow ? 1 : 0, lastTime: e.time });
      return overflow; // the first of a source is written as it is
    }
    entry.count++;
    entry.lastTime = e.time;
    return true;
  }

  /** Writes the counted repeats of the closing window and starts a new one. */
  flush(): void {
    const entries = [...this.open.values()];
    this.open.clear();
    for (const { first, count, lastTime } of entries) {
      if (count === 0) continue;
      const { request_id: _r, ...rest } = first;
      this.write({
        ...rest,
        time: lastTime,
        detail: { ...(first.detail ?? {}), aggregated: true, count, first_time: first.time, last_time: lastTime },
      });
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}

const ANONYMOUS_REASONS = new Set([
  'rate_limited',
  'no_credentials',
  'malformed_credentials',
  'unknown_client',
  'multiple_methods',
]);

function aggregated(type: AuditEventType, reason: string | undefined): boolean {
  return (
    type === 'admin.auth_failed' ||
    (type === 'client.auth_failed' && reason !== undefined && ANONYMOUS_REASONS.has(reason)) ||
    // Once the lockout holds a source back, its further attempts are counted, not written one by one.
    (type === 'user.login_failed' && reason === 'locked')
  );
}
