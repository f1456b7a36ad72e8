import { api } from '../api.ts';
import { Empty, ErrorText, Note, Page, useAction, useLoad, when, Grid } from '../ui.tsx';

interface Root {
  subject: string;
  serial: string;
  not_after: string;
  state: 'announced' | 'active' | 'retiring';
  activate_at: number;
  retire_at: number | null;
}
interface Ca {
  operator_managed: boolean;
  roots: Root[];
  bundle: string;
}
interface Issued {
  seq: number;
  time: string;
  client_id?: string;
  detail?: { serial?: string; spiffe_id?: string; not_after?: string; key_type?: string };
}

/** The workload CA: its roots and their phases, the trust bundle, certificates issued by service. */
export function CaPage() {
  const ca = useLoad(() => api<Ca>('GET', '/admin/ca'));
  const issued = useLoad(() =>
    api<{ events: Issued[] }>('GET', '/admin/audit?type=certificate.issued&order=newest&limit=500'),
  );
  const action = useAction();
  const rotate = () =>
    action.run(async () => {
      if (!confirm('Rotate the workload CA? A new root is announced in the trust bundle before it signs.')) return;
      await api('POST', '/admin/ca/rotate', {});
      ca.reload();
      return 'A new root is announced.';
    });
  const byService = new Map<string, Issued[]>();
  for (const e of [...(issued.data?.events ?? [])].reverse()) {
    const list = byService.get(e.client_id ?? '(unknown)') ?? [];
    list.push(e);
    byService.set(e.client_id ?? '(unknown)', list);
  }
  return (
    <Page
      title="Workload CA"
      actions={
        ca.data && !ca.data.operator_managed ? (
          <button type="button" disabled={action.busy} onClick={rotate}>
            Rotate the CA
          </button>
        ) : null
      }
    >
      <ErrorText error={ca.error} />
      <Note note={action.note} />
      {ca.data && (
        <>
          <p>
            {ca.data.operator_managed
              ? 'The CA is managed by the operator (its key is not kept here).'
              : 'Latchkey keeps the CA and rotates it on request.'}
          </p>
          <Grid label="CA roots" columns={['Subject', 'Serial', 'Phase', 'Signs from', 'Retires', 'Expires']}>
            {ca.data.roots.map((r) => (
              <tr key={r.serial}>
                <td>{r.subject}</td>
                <td>
                  <code>{r.serial}</code>
                </td>
                <td>
                  <span class={`badge ${r.state}`}>{r.state}</span>
                </td>
                <td>{when(r.activate_at)}</td>
                <td>{when(r.retire_at)}</td>
                <td>{when(r.not_after)}</td>
              </tr>
            ))}
          </Grid>
          <details>
            <summary>Trust bundle (PEM)</summary>
            <pre class="pem">{ca.data.bundle}</pre>
          </details>
        </>
      )}
      <h2>Certificates issued, by service</h2>
      <ErrorText error={issued.error} />
      {issued.data && byService.size === 0 && <Empty>No workload certificate has been issued yet.</Empty>}
      {[...byService].map(([service, list]) => (
        <Grid
          key={service}
          label={`certificates of ${service}`}
          caption={
            <>
              {service} ({list.length})
            </>
          }
          columns={['Issued', 'Serial', 'SPIFFE ID', 'Key', 'Expires']}
        >
          {list.slice(0, 10).map((e) => (
            <tr key={e.seq}>
              <td>{when(e.time)}</td>
              <td>
                <code>{e.detail?.serial}</code>
              </td>
              <td>
                <code>{e.detail?.spiffe_id}</code>
              </td>
              <td>{e.detail?.key_type}</td>
              <td>{when(e.detail?.not_after)}</td>
            </tr>
          ))}
        </Grid>
      ))}
    </Page>
  );
}
