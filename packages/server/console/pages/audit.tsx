import { useEffect, useState } from 'preact/hooks';
import { api, follow } from '../api.ts';
import { Empty, ErrorText, Page, useLoad, when, Grid } from '../ui.tsx';

/**
 * An event as `GET /admin/audit` returns it (the protocol's `AuditEvent` and its place in the
 * chain). Written out: the protocol package's index is Node code, and the page needs only the shape.
 */
export interface AuditEvent {
  seq: number;
  time: string;
  type: string;
  outcome: 'success' | 'failure';
  actor: string;
  subject?: string;
  client_id?: string;
  reason?: string;
  request_id?: string;
  source_ip?: string;
  hash?: string | null;
  detail?: Record<string, unknown>;
}
interface ChainReport {
  ok: boolean;
  checked: number;
  head: { seq: number; hash: string } | null;
  firstBad?: { seq: number; problem: string };
  checkpoints: { total: number; verified: number; unverifiable: number };
}
interface Checkpoint {
  seq: number;
  hash: string;
  time: string;
  kid: string;
}

const FILTERS = ['type', 'client_id', 'actor', 'subject', 'outcome'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number] | 'from' | 'to', string>>;

const query = (f: Filters) =>
  Object.entries(f)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k}=${encodeURIComponent(k === 'from' || k === 'to' ? new Date(v!).toISOString() : v!)}`)
    .join('&');

/** The audit trail: filters, newest page, live tail (SSE), an event's detail, the chain's state. */
export function Audit() {
  const [filters, setFilters] = useState<Filters>({});
  const [applied, setApplied] = useState<Filters>({});
  const [live, setLive] = useState(false);
  const [extra, setExtra] = useState<AuditEvent[]>([]);
  const [open, setOpen] = useState<AuditEvent | undefined>();
  const page = useLoad(
    () => api<{ events: AuditEvent[] }>('GET', `/admin/audit?order=newest&limit=100&${query(applied)}`),
    [applied],
  );
  useEffect(() => {
    setExtra([]);
    if (!live) return;
    const stop = new AbortController();
    const { from: _f, to: _t, ...streamable } = applied;
    void follow(
      `/admin/audit/stream?${query(streamable)}`,
      (data) => setExtra((list) => [JSON.parse(data) as AuditEvent, ...list].slice(0, 500)),
      stop.signal,
    );
    return () => stop.abort();
  }, [live, applied]);
  const seen = new Set(extra.map((e) => e.seq));
  const events = [...extra, ...[...(page.data?.events ?? [])].reverse().filter((e) => !seen.has(e.seq))];
  return (
    <Page
      title="Audit trail"
      actions={
        <label class="toggle">
          <input type="checkbox" checked={live} onChange={(e) => setLive((e.target as HTMLInputElement).checked)} />{' '}
          Live tail
        </label>
      }
    >
      <ChainStatus />
      <form
        class="filters"
        aria-label="filter events"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied({ ...filters });
        }}
      >
        {FILTERS.map((f) => (
          <label key={f}>
            {f.replace('_', ' ')}
            <input
              value={filters[f] ?? ''}
              onInput={(e) => setFilters({ ...filters, [f]: (e.target as HTMLInputElement).value })}
            />
          </label>
        ))}
        {(['from', 'to'] as const).map((f) => (
          <label key={f}>
            {f}
            <input
              type="datetime-local"
              step={1}
              value={filters[f] ?? ''}
              onInput={(e) => setFilters({ ...filters, [f]: (e.target as HTMLInputElement).value })}
            />
          </label>
        ))}
        <button type="submit">Filter</button>
      </form>
      <ErrorText error={page.error} />
      {page.data && events.length === 0 && <Empty>No event matches.</Empty>}
      {events.length > 0 && (
        <Grid
          label="audit events, newest first"
          columns={['Seq', 'Time', 'Type', 'Outcome', 'Actor', 'Client', 'Subject']}
        >
          {events.map((e) => (
            <tr key={e.seq} data-seq={e.seq} data-type={e.type} class={seen.has(e.seq) ? 'fresh' : ''}>
              <td>
                <button type="button" class="link" onClick={() => setOpen(e)}>
                  {e.seq}
                </button>
              </td>
              <td>{when(e.time)}</td>
              <td>
                <code>{e.type}</code>
              </td>
              <td>
                <span class={`badge ${e.outcome}`}>{e.outcome}</span>
              </td>
              <td>{e.actor}</td>
              <td>{e.client_id ?? ''}</td>
              <td>{e.subject ?? ''}</td>
            </tr>
          ))}
        </Grid>
      )}
      {open && (
        <section class="panel" aria-labelledby="event-title">
          <h2 id="event-title">
            Event {open.seq} <code>{open.type}</code>
          </h2>
          <pre class="json">{JSON.stringify(open, null, 2)}</pre>
          <button type="button" class="secondary" onClick={() => setOpen(undefined)}>
            Close
          </button>
        </section>
      )}
    </Page>
  );
}

function ChainStatus() {
  const report = useLoad(() => api<ChainReport>('GET', '/admin/audit/verify'));
  const checkpoints = useLoad(() => api<{ checkpoints: Checkpoint[] }>('GET', '/admin/audit/checkpoints'));
  const r = report.data;
  const last = checkpoints.data?.checkpoints.at(-1);
  return (
    <section class="panel chain" aria-labelledby="chain-title">
      <h2 id="chain-title">Hash chain</h2>
      <ErrorText error={report.error} />
      {r && (
        <p data-chain-ok={String(r.ok)}>
          <span class={`badge ${r.ok ? 'success' : 'failure'}`}>{r.ok ? 'verified' : 'BROKEN'}</span> {r.checked} events
          checked; head {r.head ? `#${r.head.seq}` : '—'}; checkpoints {r.checkpoints.verified} of {r.checkpoints.total}{' '}
          verified
          {r.firstBad && (
            <>
              {' '}
              — first bad event #{r.firstBad.seq}: {r.firstBad.problem}
            </>
          )}
          {last && (
            <>
              ; last checkpoint #{last.seq} at {when(last.time)} signed by <code>{last.kid}</code>
            </>
          )}
        </p>
      )}
      <button
        type="button"
        class="secondary small"
        onClick={() => {
          report.reload();
          checkpoints.reload();
        }}
      >
        Verify again
      </button>
    </section>
  );
}
