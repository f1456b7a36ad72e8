import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { Empty, ErrorText, Note, Page, useAction, useLoad, when, Grid } from '../ui.tsx';
import type { AuditEvent } from './audit.tsx';

interface Alert {
  id: number;
  time: string;
  detector: string;
  severity: 'low' | 'medium' | 'high';
  key: string;
  summary: string;
  firstSeq: number;
  lastSeq: number;
  count: number;
  response: string | null;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
}

type View = 'open' | 'acknowledged' | 'all';

/** Alerts the detectors raised: open and acknowledged, the events behind each, acknowledge. */
export function Alerts() {
  const [view, setView] = useState<View>('open');
  const list = useLoad(async () => {
    // Newest first: read every page (alerts are few) and reverse.
    const all: Alert[] = [];
    let after = '0';
    for (let page = 0; page < 20; page++) {
      const r = await api<{ alerts: Alert[]; cursor: string; has_more: boolean }>(
        'GET',
        `/admin/alerts?limit=1000&after=${after}${view === 'all' ? '' : `&state=${view}`}`,
      );
      all.push(...r.alerts);
      if (!r.has_more) break;
      after = r.cursor;
    }
    return all.reverse();
  }, [view]);
  return (
    <Page
      title="Alerts"
      actions={
        <fieldset class="tabs">
          <legend class="visually-hidden">Which alerts</legend>
          {(['open', 'acknowledged', 'all'] as const).map((v) => (
            <button
              key={v}
              type="button"
              aria-pressed={view === v}
              class={view === v ? '' : 'secondary'}
              onClick={() => setView(v)}
            >
              {v}
            </button>
          ))}
        </fieldset>
      }
    >
      <ErrorText error={list.error} />
      {list.data && list.data.length === 0 && <Empty>No {view === 'all' ? '' : view} alerts.</Empty>}
      {list.data?.map((a) => (
        <AlertCard key={a.id} alert={a} onChange={list.reload} />
      ))}
    </Page>
  );
}

function AlertCard({ alert, onChange }: { alert: Alert; onChange: () => void }) {
  const [showEvents, setShowEvents] = useState(false);
  const action = useAction();
  const acknowledge = () =>
    action.run(async () => {
      await api('POST', `/admin/alerts/${alert.id}/acknowledge`);
      onChange();
      return `Alert ${alert.id} acknowledged.`;
    });
  return (
    <article class={`alert ${alert.severity}`} data-alert={alert.id} aria-labelledby={`alert-${alert.id}`}>
      <h2 id={`alert-${alert.id}`}>
        <span class={`badge ${alert.severity}`}>{alert.severity}</span> {alert.summary}
      </h2>
      <p class="muted">
        #{alert.id} · {alert.detector} · <code>{alert.key}</code> · {alert.count} events (#{alert.firstSeq}–#
        {alert.lastSeq}) · raised {when(alert.time)}
        {alert.response && <> · response: {alert.response}</>}
        {alert.acknowledgedAt && (
          <>
            {' '}
            · acknowledged {when(alert.acknowledgedAt)} by {alert.acknowledgedBy}
          </>
        )}
      </p>
      <Note note={action.note} />
      <div class="row">
        {!alert.acknowledgedAt && (
          <button type="button" disabled={action.busy} onClick={acknowledge}>
            Acknowledge
          </button>
        )}
        <button type="button" class="secondary" aria-expanded={showEvents} onClick={() => setShowEvents(!showEvents)}>
          {showEvents ? 'Hide' : 'Show'} the events behind it
        </button>
      </div>
      {showEvents && <AlertEvents alert={alert} />}
    </article>
  );
}

/** The audit events from the alert's first to its last, about its key (a client, a source address). */
function AlertEvents({ alert }: { alert: Alert }) {
  const events = useLoad(async () => {
    const [kind, ...rest] = alert.key.split(':');
    const value = rest.join(':');
    const filter = kind === 'client' ? `&client_id=${encodeURIComponent(value)}` : '';
    const r = await api<{ events: AuditEvent[] }>(
      'GET',
      `/admin/audit?after=${alert.firstSeq - 1}&limit=${Math.min(1000, Math.max(100, alert.count))}${filter}`,
    );
    return r.events.filter(
      (e) =>
        e.seq <= alert.lastSeq && (kind !== 'ip' || e.source_ip === value) && (kind !== 'actor' || e.actor === value),
    );
  });
  return (
    <>
      <ErrorText error={events.error} />
      {events.data && (
        <Grid label={`events behind alert ${alert.id}`} columns={['Seq', 'Time', 'Type', 'Client', 'Reason', 'Source']}>
          {events.data.map((e) => (
            <tr key={e.seq}>
              <td>{e.seq}</td>
              <td>{when(e.time)}</td>
              <td>
                <code>{e.type}</code>
              </td>
              <td>{e.client_id ?? ''}</td>
              <td>{e.reason ?? ''}</td>
              <td>{e.source_ip ?? ''}</td>
            </tr>
          ))}
        </Grid>
      )}
    </>
  );
}
