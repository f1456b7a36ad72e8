import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { Empty, ErrorText, Note, Page, useAction, useLoad, when, Grid } from '../ui.tsx';

interface Client {
  client_id: string;
  client_name?: string;
  client_id_issued_at: number;
  disabled: boolean;
  locked_until?: string | null;
  audiences?: string[];
  roles?: string[];
  scope?: string;
  grant_types?: string[];
  token_endpoint_auth_method?: string;
  jwks?: { keys: { kid?: string; kty: string; alg?: string }[] };
  jwks_uri?: string;
  tls_client_auth_san_uri?: string;
}
interface AuditEvent {
  seq: number;
  time: string;
  type: string;
  client_id?: string;
  detail?: Record<string, unknown>;
}

const state = (c: Client) =>
  c.disabled ? 'disabled' : c.locked_until && Date.parse(c.locked_until) > Date.now() ? 'locked' : 'active';
const words = (s: string) =>
  s
    .split(/[\s,]+/)
    .map((w) => w.trim())
    .filter(Boolean);

/** Registered services (OAuth clients): list, register, detail with certificates, revoke, unlock. */
export function Services() {
  const { data, error, reload } = useLoad(() => api<{ clients: Client[] }>('GET', '/admin/clients'));
  const [selected, setSelected] = useState<string | undefined>();
  const [creating, setCreating] = useState(false);
  const clients = data?.clients ?? [];
  const current = clients.find((c) => c.client_id === selected);
  return (
    <Page
      title="Services"
      actions={
        <button type="button" onClick={() => setCreating(true)}>
          Register a service
        </button>
      }
    >
      <ErrorText error={error} />
      {creating && (
        <Register
          onDone={(id) => {
            setCreating(false);
            if (id) setSelected(id);
            reload();
          }}
        />
      )}
      {data && clients.length === 0 && <Empty>No services are registered yet.</Empty>}
      {clients.length > 0 && (
        <Grid label="registered services" columns={['Client', 'Audiences', 'Roles', 'Authentication', 'State']}>
          {clients.map((c) => (
            <tr key={c.client_id} class={c.client_id === selected ? 'selected' : ''}>
              <td>
                <button type="button" class="link" onClick={() => setSelected(c.client_id)}>
                  {c.client_id}
                </button>
                {c.client_name && c.client_name !== c.client_id && <span class="muted"> {c.client_name}</span>}
              </td>
              <td>{(c.audiences ?? []).join(', ') || '—'}</td>
              <td>{(c.roles ?? []).join(', ') || '—'}</td>
              <td>
                <code>{c.token_endpoint_auth_method ?? '—'}</code>
              </td>
              <td>
                <span class={`badge ${state(c)}`}>{state(c)}</span>
              </td>
            </tr>
          ))}
        </Grid>
      )}
      {current && <ServiceDetail client={current} onChange={reload} />}
    </Page>
  );
}

function Register({ onDone }: { onDone: (clientId?: string) => void }) {
  const [name, setName] = useState('');
  const [audiences, setAudiences] = useState('');
  const [roles, setRoles] = useState('');
  const [method, setMethod] = useState('client_secret_basic');
  const [secret, setSecret] = useState<{ id: string; secret?: string } | undefined>();
  const action = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      const body: Record<string, unknown> = {
        client_name: name,
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: method,
      };
      if (words(audiences).length > 0) body.audiences = words(audiences);
      if (words(roles).length > 0) body.roles = words(roles);
      const r = await api<{ client_id: string; client_secret?: string }>('POST', '/register', body);
      setSecret({ id: r.client_id, ...(r.client_secret ? { secret: r.client_secret } : {}) });
      return `Registered ${r.client_id}.`;
    });
  };
  if (secret)
    return (
      <section class="panel" aria-label="new service">
        <h2>Registered {secret.id}</h2>
        {secret.secret && (
          <p>
            Its client secret, shown this once: <code class="secret">{secret.secret}</code>
          </p>
        )}
        <button type="button" onClick={() => onDone(secret.id)}>
          Done
        </button>
      </section>
    );
  return (
    <form class="panel" onSubmit={submit} aria-label="register a service">
      <h2>Register a service</h2>
      <label>
        Name
        <input required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Audiences it may ask tokens for (space-separated URIs)
        <input value={audiences} onInput={(e) => setAudiences((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Roles
        <input value={roles} onInput={(e) => setRoles((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Authentication
        <select value={method} onChange={(e) => setMethod((e.target as HTMLSelectElement).value)}>
          <option value="client_secret_basic">client secret (HTTP Basic)</option>
          <option value="tls_client_auth">mTLS workload certificate</option>
        </select>
      </label>
      <Note note={action.note} />
      <div class="row">
        <button type="submit" disabled={action.busy}>
          Register
        </button>
        <button type="button" class="secondary" onClick={() => onDone()}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function ServiceDetail({ client, onChange }: { client: Client; onChange: () => void }) {
  const action = useAction();
  const certs = useLoad(
    () =>
      api<{ events: AuditEvent[] }>(
        'GET',
        `/admin/audit?type=certificate.issued&client_id=${encodeURIComponent(client.client_id)}&order=newest&limit=20`,
      ),
    [client.client_id],
  );
  const id = encodeURIComponent(client.client_id);
  const revoke = () =>
    action.run(async () => {
      if (!confirm(`Revoke ${client.client_id}? It is disabled and every token it holds stops working.`)) return;
      await api('POST', `/admin/clients/${id}/revoke`, {});
      onChange();
      return `${client.client_id} is revoked: disabled, and its tokens rejected everywhere.`;
    });
  const unlock = () =>
    action.run(async () => {
      await api('POST', `/admin/clients/${id}/unlock`);
      onChange();
      return `${client.client_id} is unlocked.`;
    });
  return (
    <section class="panel" aria-labelledby="detail-title">
      <h2 id="detail-title">{client.client_id}</h2>
      <dl class="facts">
        <dt>Registered</dt>
        <dd>{when(client.client_id_issued_at)}</dd>
        <dt>Grant types</dt>
        <dd>{(client.grant_types ?? []).join(', ') || '—'}</dd>
        <dt>Scope</dt>
        <dd>{client.scope ?? '—'}</dd>
        <dt>Keys</dt>
        <dd>
          {client.jwks
            ? client.jwks.keys.map((k) => `${k.kid ?? '(no kid)'} ${k.kty}${k.alg ? ` ${k.alg}` : ''}`).join('; ')
            : client.jwks_uri
              ? client.jwks_uri
              : client.tls_client_auth_san_uri
                ? `certificate ${client.tls_client_auth_san_uri}`
                : 'client secret'}
        </dd>
        <dt>Locked until</dt>
        <dd>{client.locked_until ? when(client.locked_until) : '—'}</dd>
      </dl>
      <h3>Workload certificates</h3>
      <ErrorText error={certs.error} />
      {certs.data && certs.data.events.length === 0 && <Empty>No certificate issued to it yet.</Empty>}
      {certs.data && certs.data.events.length > 0 && (
        <Grid label="certificates issued to this service" columns={['Issued', 'Serial', 'SPIFFE ID', 'Expires']}>
          {[...certs.data.events].reverse().map((e) => (
            <tr key={e.seq}>
              <td>{when(e.time)}</td>
              <td>
                <code>{String(e.detail?.serial ?? '')}</code>
              </td>
              <td>
                <code>{String(e.detail?.spiffe_id ?? '')}</code>
              </td>
              <td>{when(String(e.detail?.not_after ?? ''))}</td>
            </tr>
          ))}
        </Grid>
      )}
      <Note note={action.note} />
      <div class="row">
        {!client.disabled && (
          <button type="button" class="danger" disabled={action.busy} onClick={revoke}>
            Revoke and disable
          </button>
        )}
        {client.locked_until && (
          <button type="button" disabled={action.busy} onClick={unlock}>
            Unlock
          </button>
        )}
      </div>
    </section>
  );
}
