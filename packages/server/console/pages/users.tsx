import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { Empty, ErrorText, Grid, Note, Page, useAction, useLoad, when } from '../ui.tsx';

interface User {
  sub: string;
  username: string;
  email: string | null;
  name: string | null;
  roles: string[];
  groups: string[];
  disabled: boolean;
  password_set: boolean;
  must_change_password: boolean;
  mfa_required: boolean;
  second_factor: 'totp' | null;
  created_at: string;
  password?: string;
}

const words = (s: string) =>
  s
    .split(/[\s,]+/)
    .map((w) => w.trim())
    .filter(Boolean);

/** Users who sign in at the IdP: list, create (a generated password shown once), roles, disable/enable, reset. */
export function Users() {
  const list = useLoad(async () => {
    const all: User[] = [];
    let after: string | null = null;
    for (let page = 0; page < 20; page++) {
      const r: { users: User[]; next: string | null } = await api(
        'GET',
        `/admin/users?limit=500${after ? `&after=${encodeURIComponent(after)}` : ''}`,
      );
      all.push(...r.users);
      if (!r.next) break;
      after = r.next;
    }
    return all;
  });
  const [selected, setSelected] = useState<string | undefined>();
  const [creating, setCreating] = useState(false);
  const current = list.data?.find((u) => u.sub === selected);
  return (
    <Page
      title="Users"
      actions={
        <button type="button" onClick={() => setCreating(true)}>
          Create a user
        </button>
      }
    >
      <ErrorText error={list.error} />
      {creating && (
        <CreateUser
          onDone={(sub) => {
            setCreating(false);
            if (sub) setSelected(sub);
            list.reload();
          }}
        />
      )}
      {list.data && list.data.length === 0 && <Empty>No users yet.</Empty>}
      {list.data && list.data.length > 0 && (
        <Grid label="users" columns={['Username', 'Name', 'Roles', 'Groups', 'Second factor', 'State']}>
          {list.data.map((u) => (
            <tr key={u.sub} data-user={u.username} class={u.sub === selected ? 'selected' : ''}>
              <td>
                <button type="button" class="link" onClick={() => setSelected(u.sub)}>
                  {u.username}
                </button>
              </td>
              <td>{u.name ?? ''}</td>
              <td>{u.roles.join(', ') || '—'}</td>
              <td>{u.groups.join(', ') || '—'}</td>
              <td>{u.second_factor ?? (u.mfa_required ? 'required, not enrolled' : '—')}</td>
              <td>
                <span class={`badge ${u.disabled ? 'disabled' : 'active'}`}>{u.disabled ? 'disabled' : 'active'}</span>
              </td>
            </tr>
          ))}
        </Grid>
      )}
      {current && <UserDetail key={current.sub} user={current} onChange={list.reload} />}
    </Page>
  );
}

function CreateUser({ onDone }: { onDone: (sub?: string) => void }) {
  const [username, setUsername] = useState('');
  const [roles, setRoles] = useState('');
  const [mfa, setMfa] = useState(false);
  const [made, setMade] = useState<User | undefined>();
  const action = useAction();
  if (made)
    return (
      <section class="panel" aria-label="new user">
        <h2>Created {made.username}</h2>
        {made.password && (
          <p>
            A password, shown this once (to be changed at the first sign-in):{' '}
            <code class="secret">{made.password}</code>
          </p>
        )}
        <button type="button" onClick={() => onDone(made.sub)}>
          Done
        </button>
      </section>
    );
  return (
    <form
      class="panel"
      aria-label="create a user"
      onSubmit={(e) => {
        e.preventDefault();
        void action.run(async () => {
          const body: Record<string, unknown> = { username, generate_password: true, mfa_required: mfa };
          if (words(roles).length > 0) body.roles = words(roles);
          setMade(await api<User>('POST', '/admin/users', body));
          return undefined;
        });
      }}
    >
      <h2>Create a user</h2>
      <label>
        Username
        <input required value={username} onInput={(e) => setUsername((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Roles (space-separated)
        <input value={roles} onInput={(e) => setRoles((e.target as HTMLInputElement).value)} />
      </label>
      <label class="toggle">
        <input type="checkbox" checked={mfa} onChange={(e) => setMfa((e.target as HTMLInputElement).checked)} /> Require
        a second factor
      </label>
      <Note note={action.note} />
      <div class="row">
        <button type="submit" disabled={action.busy}>
          Create
        </button>
        <button type="button" class="secondary" onClick={() => onDone()}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function UserDetail({ user, onChange }: { user: User; onChange: () => void }) {
  const [roles, setRoles] = useState(user.roles.join(' '));
  const [password, setPassword] = useState<string | undefined>();
  const action = useAction();
  const path = `/admin/users/${encodeURIComponent(user.sub)}`;
  const act = (what: () => Promise<string>) =>
    action.run(async () => {
      const text = await what();
      onChange();
      return text;
    });
  return (
    <section class="panel" aria-labelledby="user-title">
      <h2 id="user-title">{user.username}</h2>
      <dl class="facts">
        <dt>Subject</dt>
        <dd>
          <code>{user.sub}</code>
        </dd>
        <dt>Email</dt>
        <dd>{user.email ?? '—'}</dd>
        <dt>Created</dt>
        <dd>{when(user.created_at)}</dd>
        <dt>Password</dt>
        <dd>{user.password_set ? (user.must_change_password ? 'set, to be changed' : 'set') : 'none'}</dd>
      </dl>
      <div class="row">
        <label>
          Roles
          <input value={roles} onInput={(e) => setRoles((e.target as HTMLInputElement).value)} />
        </label>
        <button
          type="button"
          disabled={action.busy}
          onClick={() =>
            act(async () => {
              await api('PUT', `${path}/roles`, { roles: words(roles) });
              return `Roles of ${user.username}: ${words(roles).join(', ') || 'none'}.`;
            })
          }
        >
          Save roles
        </button>
      </div>
      {password && (
        <p>
          New password, shown this once: <code class="secret">{password}</code>
        </p>
      )}
      <Note note={action.note} />
      <div class="row">
        {user.disabled ? (
          <button
            type="button"
            disabled={action.busy}
            onClick={() =>
              act(async () => {
                await api('POST', `${path}/enable`);
                return `${user.username} can sign in again.`;
              })
            }
          >
            Enable
          </button>
        ) : (
          <button
            type="button"
            class="danger"
            disabled={action.busy}
            onClick={() =>
              act(async () => {
                if (!confirm(`Disable ${user.username}? Their sessions and tokens end everywhere.`))
                  return 'Not disabled.';
                await api('POST', `${path}/disable`);
                return `${user.username} is disabled: sessions and tokens revoked.`;
              })
            }
          >
            Disable
          </button>
        )}
        <button
          type="button"
          class="secondary"
          disabled={action.busy}
          onClick={() =>
            act(async () => {
              const r = await api<User>('POST', `${path}/password`, { generate: true });
              setPassword(r.password);
              return `A new password for ${user.username}; they change it at the next sign-in.`;
            })
          }
        >
          Reset password
        </button>
        {user.second_factor && (
          <button
            type="button"
            class="secondary"
            disabled={action.busy}
            onClick={() =>
              act(async () => {
                await api('POST', `${path}/second-factor/reset`);
                return `${user.username} enrols a second factor again at the next sign-in.`;
              })
            }
          >
            Reset second factor
          </button>
        )}
      </div>
    </section>
  );
}
