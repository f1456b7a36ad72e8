import 'uplot/dist/uPlot.min.css';
import './console.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { finishAccountSignIn, onSignedOut, resume, signIn, signInWithAccount, signOut } from './api.ts';
import { Alerts } from './pages/alerts.tsx';
import { Audit } from './pages/audit.tsx';
import { CaPage } from './pages/ca.tsx';
import { Dashboard } from './pages/dashboard.tsx';
import { Keys } from './pages/keys.tsx';
import { Policies } from './pages/policies.tsx';
import { Services } from './pages/services.tsx';
import { Users } from './pages/users.tsx';
import { describe } from './ui.tsx';

const PAGES = {
  dashboard: { title: 'Dashboard', view: Dashboard },
  services: { title: 'Services', view: Services },
  users: { title: 'Users', view: Users },
  keys: { title: 'Signing keys', view: Keys },
  ca: { title: 'Workload CA', view: CaPage },
  policies: { title: 'Policies', view: Policies },
  audit: { title: 'Audit trail', view: Audit },
  alerts: { title: 'Alerts', view: Alerts },
} as const;
type PageName = keyof typeof PAGES;

/** The route is the URL's fragment: `#/keys`; `#/sign-in?code=...` carries a one-time link's code. */
function useRoute(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash.replace(/^#\/?/, '');
}

function App() {
  const route = useRoute();
  const [signedIn, setSignedIn] = useState<boolean | undefined>(undefined);
  const [error, setError] = useState('');
  useEffect(() => onSignedOut(() => setSignedIn(false)) as unknown as void, []);
  useEffect(() => {
    const code = /^sign-in\?code=([^&]+)/.exec(route)?.[1];
    // The code is used once: take it out of the address bar and history first.
    if (code) history.replaceState(null, '', '#/dashboard');
    const how = code ? 'The sign-in link did not work' : 'The sign-in did not work';
    (code
      ? signIn({ code }).then(() => true)
      : finishAccountSignIn().then((back) => (back === undefined ? resume() : back))
    ).then(
      (ok) => setSignedIn(ok),
      (err) => {
        setError(`${how}: ${describe(err)}`);
        setSignedIn(false);
      },
    );
  }, []);
  if (signedIn === undefined) return <p class="loading">Loading…</p>;
  if (!signedIn) return <SignIn error={error} onSignedIn={() => setSignedIn(true)} />;
  const name = (route.split('?')[0] || 'dashboard') as PageName;
  const page = PAGES[name] ?? PAGES.dashboard;
  document.title = `${page.title} · Latchkey`;
  const View = page.view;
  return (
    <>
      <header class="top">
        <a class="brand" href="#/dashboard">
          Latchkey
        </a>
        <nav aria-label="console">
          <ul>
            {Object.entries(PAGES).map(([key, p]) => (
              <li key={key}>
                <a href={`#/${key}`} aria-current={key === name ? 'page' : undefined}>
                  {p.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <button type="button" class="secondary small" onClick={() => signOut().finally(() => setSignedIn(false))}>
          Sign out
        </button>
      </header>
      <main>
        <View key={name} />
      </main>
    </>
  );
}

function SignIn({ error, onSignedIn }: { error: string; onSignedIn: () => void }) {
  const [token, setToken] = useState('');
  const [problem, setProblem] = useState('');
  const shown = problem || error;
  const [busy, setBusy] = useState(false);
  return (
    <main class="sign-in">
      <h1>Latchkey console</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          signIn({ admin_token: token.trim() }).then(
            () => {
              setToken('');
              onSignedIn();
            },
            (err) => {
              setProblem(describe(err));
              setBusy(false);
            },
          );
        }}
      >
        <label>
          Admin token
          <input
            type="password"
            autocomplete="off"
            required
            value={token}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          />
        </label>
        {shown && (
          <p class="note bad" role="alert">
            {shown}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      <p>or</p>
      <button
        type="button"
        class="secondary"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          signInWithAccount().catch((err) => {
            setProblem(describe(err));
            setBusy(false);
          });
        }}
      >
        Sign in with a Latchkey account
      </button>
      <p class="muted">
        (a user with the <code>latchkey-admin</code> role, through the IdP's own sign-in). Or open a one-time link:{' '}
        <code>latchkey console link</code> prints one, and <code>npm run demo</code> prints one when it starts.
      </p>
    </main>
  );
}

render(<App />, document.getElementById('app')!);
