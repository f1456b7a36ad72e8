import type { Clock } from '@latchkey/protocol';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import type { AuditWriter } from '../audit/audit_writer.ts';
import { validationFailed } from '../errors.ts';
import { adminErrors, Rfc3339, typed } from '../http/schemas.ts';
import type { FeedHistory } from '../revocation/feed_history.ts';
import type { AuditStore } from '../storage/ports.ts';

export interface StatsAdminDeps {
  clock: Clock;
  store: Pick<AuditStore, 'auditAtOrAfter' | 'auditHead' | 'auditCounts' | 'queryAuditEvents'>;
  writer: Pick<AuditWriter, 'flush'>;
  feed: Pick<FeedHistory, 'between'>;
}

/** Bucket widths: how many characters of an RFC 3339 time name the bucket, and its seconds. */
const STEPS = {
  '1s': { chars: 19, seconds: 1 },
  '10s': { chars: 18, seconds: 10 },
  '1m': { chars: 16, seconds: 60 },
  '10m': { chars: 15, seconds: 600 },
  '1h': { chars: 13, seconds: 3600 },
  '1d': { chars: 10, seconds: 86400 },
} as const;
type Step = keyof typeof STEPS;
const MAX_BUCKETS = 1440;
/** Denied decisions read one by one to split them by action (they are few: allows are counted). */
const MAX_DENIALS_READ = 50_000;

const FAILED_AUTH = ['client.auth_failed', 'user.login_failed', 'admin.auth_failed'] as const;
const COUNTED = ['token.issued', ...FAILED_AUTH] as const;

const Series = Type.Array(
  Type.Object({
    name: Type.String({ description: 'what is counted: a client, an event type, "service action"' }),
    counts: Type.Array(Type.Integer(), { description: 'one per bucket' }),
  }),
);

/** The bucket key (`chars` characters of a time) as the RFC 3339 time the bucket starts. */
const bucketStart = (key: string): number => Date.parse(`${key}${'0000-01-01T00:00:00'.slice(key.length)}Z`);

/**
 * GET /admin/stats: counts over time for the console's dashboard, from the audit trail (tokens
 * issued by client, failed authentications by kind, denied decisions by service and by service
 * and action — counted rows weighed by their count) and this replica's feed history (streams and
 * lag). Read-only; the range's place in the chain is found by seq, so the counts use the
 * (type, seq) index and never scan the trail by time.
 */
export function registerStatsAdmin(scope: FastifyInstance, deps: StatsAdminDeps): void {
  typed(scope).get(
    '/admin/stats',
    {
      schema: {
        tags: ['admin: audit'],
        querystring: Type.Object(
          {
            from: Type.Optional(Rfc3339('start (default: an hour before `to`)')),
            to: Type.Optional(Rfc3339('end (default: now)')),
            step: Type.Optional(Type.Enum(Object.keys(STEPS) as Step[], { description: 'bucket width (default 1m)' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            step: Type.String(),
            buckets: Type.Array(Type.String(), { description: 'the start of each bucket (RFC 3339)' }),
            tokens_issued: Series,
            failed_authentications: Series,
            denied_decisions: Series,
            denied_by_action: Series,
            feed: Type.Array(Type.Object({ time: Type.String(), streams: Type.Integer(), lag: Type.Integer() }), {
              description: "this replica's feed streams and lag, sampled every 10 s",
            }),
            truncated: Type.Boolean({ description: 'denials past 50,000 in the range were not split by action' }),
          }),
          ...adminErrors(400),
        },
      },
    },
    async (request) => {
      const step: Step = request.query.step ?? '1m';
      const { chars, seconds } = STEPS[step];
      const to = request.query.to ? Date.parse(request.query.to) : deps.clock.now();
      const from = request.query.from ? Date.parse(request.query.from) : to - 3600_000;
      if (!(from < to)) throw validationFailed('from must be before to');
      const first = Math.floor(from / 1000 / seconds) * seconds * 1000;
      const count = Math.floor((to - first) / (seconds * 1000)) + 1;
      if (count > MAX_BUCKETS)
        throw validationFailed(`at most ${MAX_BUCKETS} buckets: choose a wider step or a shorter range`);
      const starts = Array.from({ length: count }, (_, i) => first + i * seconds * 1000);
      const index = new Map(starts.map((t, i) => [t, i]));
      const series = () => new Map<string, number[]>();
      const add = (m: Map<string, number[]>, name: string, key: string, n: number) => {
        const i = index.get(bucketStart(key));
        if (i === undefined) return;
        let counts = m.get(name);
        if (!counts) m.set(name, (counts = new Array<number>(starts.length).fill(0)));
        counts[i]! += n;
      };

      await deps.writer.flush();
      const fromIso = new Date(first).toISOString();
      const toIso = new Date(to).toISOString();
      const ends = await chainEnds(deps.store);
      const afterSeq = (await seqAtOrAfter(deps.store, ends, fromIso)) - 1;
      const throughSeq = (await seqAtOrAfter(deps.store, ends, toIso, true)) - 1;
      const issued = series();
      const failed = series();
      const denied = series();
      const byAction = series();
      let truncated = false;
      if (throughSeq > afterSeq) {
        for (const r of await deps.store.auditCounts({ types: COUNTED, afterSeq, throughSeq, bucketChars: chars })) {
          if (r.type === 'token.issued') add(issued, r.client_id ?? '(none)', r.bucket, r.n);
          else add(failed, r.type, r.bucket, r.n);
        }
        for (const type of ['authz.decision', 'authz.decisions'] as const) {
          let after = afterSeq;
          let read = 0;
          for (;;) {
            const rows = await deps.store.queryAuditEvents({ type, outcome: 'failure', after, limit: 1000 });
            for (const e of rows) {
              if (e.seq > throughSeq) break;
              const n = type === 'authz.decisions' ? Number(e.detail?.count ?? 1) : 1;
              const service = e.client_id ?? '(unknown)';
              const key = e.time.slice(0, chars);
              add(denied, service, key, n);
              add(byAction, `${service} ${String(e.detail?.action ?? '(none)')}`, key, n);
            }
            read += rows.length;
            if (rows.length < 1000 || rows[rows.length - 1]!.seq >= throughSeq) break;
            if (read >= MAX_DENIALS_READ) {
              truncated = true;
              break;
            }
            after = rows[rows.length - 1]!.seq;
          }
        }
      }
      const list = (m: Map<string, number[]>) =>
        [...m].map(([name, counts]) => ({ name, counts })).sort((a, b) => a.name.localeCompare(b.name));
      return {
        step,
        buckets: starts.map((t) => new Date(t).toISOString()),
        tokens_issued: list(issued),
        failed_authentications: list(failed),
        denied_decisions: list(denied),
        denied_by_action: list(byAction),
        feed: deps.feed
          .between(from, to)
          .map((s) => ({ time: new Date(s.time).toISOString(), streams: s.streams, lag: s.lag })),
        truncated,
      };
    },
  );
}

/** The first seq still stored (pruning removes the oldest) and the head's. */
async function chainEnds(
  store: Pick<AuditStore, 'auditAtOrAfter' | 'auditHead'>,
): Promise<{ first: number | undefined; head: number }> {
  return { first: (await store.auditAtOrAfter(0))?.seq, head: (await store.auditHead())?.seq ?? 0 };
}

/**
 * The seq of the first event recorded at or after `time` (after it, with `strictly`), or one past
 * the head: a binary search over seq, whose order is the order of recording.
 */
async function seqAtOrAfter(
  store: Pick<AuditStore, 'auditAtOrAfter'>,
  { first, head }: { first: number | undefined; head: number },
  time: string,
  strictly = false,
): Promise<number> {
  if (first === undefined) return head + 1;
  const past = (t: string) => (strictly ? t > time : t >= time);
  let lo = first;
  let hi = head + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const e = await store.auditAtOrAfter(mid);
    if (!e) hi = mid;
    else if (past(e.time)) hi = mid;
    else lo = e.seq + 1;
  }
  return lo;
}
