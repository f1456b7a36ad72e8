/**
 * The console's one way to the IdP: the admin API, with the session cookie (sent by the browser)
 * and the session's CSRF token in `x-csrf-token`. Nothing here talks to another origin.
 */

let csrf = '';

/** An admin API error: its HTTP status, stable `error` code and Cedar's or the schema's located problems. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly problems: Problem[];
  constructor(status: number, code: string, description: string, problems: Problem[]) {
    super(description);
    this.status = status;
    this.code = code;
    this.problems = problems;
  }
}

export interface Problem {
  message: string;
  source?: string;
  line?: number;
  column?: number;
  path?: string;
}

const listeners = new Set<() => void>();
/** Called when the session has ended (a 401): the app shows the sign-in again. */
export const onSignedOut = (f: () => void): (() => boolean) => {
  listeners.add(f);
  return () => listeners.delete(f);
};

async function failure(res: Response): Promise<ApiError> {
  let body: { error?: string; error_description?: string; errors?: Problem[] } = {};
  try {
    body = await res.json();
  } catch {}
  if (res.status === 401) {
    csrf = '';
    for (const f of listeners) f();
  }
  return new ApiError(
    res.status,
    body.error ?? 'http_error',
    body.error_description ?? res.statusText,
    body.errors ?? [],
  );
}

/** Calls the admin API (or the console's session routes); JSON in, JSON out. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (csrf) headers['x-csrf-token'] = csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw await failure(res);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

interface Session {
  csrf: string;
  expires_at: number;
}

/** Signs in with the admin token or a one-time link's code. */
export async function signIn(
  credential: { admin_token: string } | { code: string } | { access_token: string },
): Promise<void> {
  csrf = (await api<Session>('POST', '/console/session', credential)).csrf;
}

/** Picks up the session a reloaded page still has (the cookie), if any. */
export async function resume(): Promise<boolean> {
  const res = await fetch('/console/session', { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (!res.ok) return false;
  csrf = ((await res.json()) as Session).csrf;
  return true;
}

export async function signOut(): Promise<void> {
  await api('DELETE', '/console/session');
  csrf = '';
}

/**
 * Reads a Server-Sent Events stream of the admin API with fetch (EventSource cannot send the
 * CSRF header), calling `onEvent` with each event's data; resumes from the last id after a break.
 */
export async function follow(
  path: string,
  onEvent: (data: string, id: string) => void,
  signal: AbortSignal,
): Promise<void> {
  let lastId = '';
  while (!signal.aborted) {
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream', 'x-csrf-token': csrf };
      if (lastId) headers['last-event-id'] = lastId;
      const res = await fetch(path, { headers, credentials: 'same-origin', signal });
      if (!res.ok || !res.body) throw await failure(res);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let data = '';
          let id = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('data: ')) data += line.slice(6);
            else if (line.startsWith('id: ')) id = line.slice(4);
          }
          if (data) {
            if (id) lastId = id;
            onEvent(data, id);
          }
          end = buffer.indexOf('\n\n');
        }
      }
    } catch (err) {
      if (signal.aborted || (err instanceof ApiError && err.status === 401)) return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const b64url = (bytes: ArrayBuffer | Uint8Array): string =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
const PKCE_KEY = 'latchkey-console-sign-in';

interface SignInParams {
  client_id: string;
  redirect_uri: string;
  resource: string;
  scope: string;
  authorization_endpoint: string;
  token_endpoint: string;
  role: string;
}

/**
 * Sends the browser to the IdP's own sign-in (authorization code with PKCE, RFC 7636, for the
 * console's public client); the state and verifier wait in sessionStorage for the way back.
 */
export async function signInWithAccount(): Promise<never> {
  const p = await api<SignInParams>('GET', '/console/sign-in');
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, p }));
  const url = new URL(p.authorization_endpoint);
  for (const [k, v] of Object.entries({
    response_type: 'code',
    client_id: p.client_id,
    redirect_uri: p.redirect_uri,
    scope: p.scope,
    resource: p.resource,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }))
    url.searchParams.set(k, v);
  location.assign(url.href);
  return new Promise<never>(() => {});
}

/**
 * Back from the IdP with `?code&state`: checks the state, redeems the code with the verifier
 * (RFC 6749 §4.1.3) and signs in with the access token. Undefined when this is not a way back.
 */
export async function finishAccountSignIn(): Promise<boolean | undefined> {
  const q = new URLSearchParams(location.search);
  const code = q.get('code');
  const error = q.get('error');
  if (!code && !error) return undefined;
  const saved = sessionStorage.getItem(PKCE_KEY);
  sessionStorage.removeItem(PKCE_KEY);
  // The code is used once: take it out of the address bar and history first.
  history.replaceState(null, '', `${location.pathname}#/dashboard`);
  if (error) throw new Error(`the sign-in was not completed: ${error}`);
  if (!saved) throw new Error('the sign-in was not started here');
  const { verifier, state, p } = JSON.parse(saved) as { verifier: string; state: string; p: SignInParams };
  if (q.get('state') !== state) throw new Error('the sign-in came back with another state');
  const res = await fetch(p.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: code!,
      redirect_uri: p.redirect_uri,
      client_id: p.client_id,
      code_verifier: verifier,
    }),
  });
  const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  if (!res.ok || !body.access_token) throw new Error(body.error_description ?? body.error ?? `token: ${res.status}`);
  await signIn({ access_token: body.access_token });
  return true;
}
