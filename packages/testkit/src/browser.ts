import { createHash, randomBytes } from 'node:crypto';
import type { TestIdp } from './test_idp.ts';

/**
 * A browser as far as signing in at the IdP needs one: cookies kept, redirects not followed, forms
 * posted as a browser posts them (their hidden `tx` with the fields typed in).
 */
export class Browser {
  readonly cookies = new Map<string, string>();
  private readonly t: TestIdp;
  private readonly defaults: Record<string, string>;

  /** `headers`: sent with every request (an `x-forwarded-for` behind a trusted proxy, say). */
  constructor(t: TestIdp, headers: Record<string, string> = {}) {
    this.t = t;
    this.defaults = headers;
  }

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    for (const [k, v] of Object.entries(this.defaults)) if (!headers.has(k)) headers.set(k, v);
    if (this.cookies.size > 0) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await this.t.fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';')[0] as string;
      const i = pair.indexOf('=');
      this.cookies.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return res;
  }

  /** Posts the form a page showed. */
  async submit(page: string, action: string, fields: Record<string, string>): Promise<Response> {
    const tx = /name="tx" value="([^"]+)"/.exec(page)?.[1];
    if (!tx) throw new Error('the page has no sign-in form');
    return this.fetch(`${this.t.issuer}${action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ tx, ...fields }).toString(),
    });
  }

  /** Opens an authorization URL and signs in; the response is the redirect back (or the page again). */
  async signIn(url: URL | string, username: string, password: string): Promise<Response> {
    const page = await this.fetch(String(url));
    if (page.status !== 200) throw new Error(`/authorize answered ${page.status}: ${await page.text()}`);
    return this.submit(await page.text(), '/authorize/login', { username, password });
  }
}

/**
 * A user's tokens the whole way (authorization code with PKCE, a public client): what a test needs
 * when the flow itself is not what it tests.
 */
export async function userTokens(
  t: TestIdp,
  options: {
    clientId: string;
    redirectUri: string;
    username: string;
    password: string;
    scope?: string;
    /** RFC 8707 resources asked for at /authorize. */
    resource?: string[];
  },
): Promise<{ access_token: string; id_token?: string; refresh_token?: string }> {
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL(`${t.issuer}/authorize`);
  for (const [k, v] of Object.entries({
    client_id: options.clientId,
    redirect_uri: options.redirectUri,
    response_type: 'code',
    scope: options.scope ?? 'openid',
    state: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }))
    url.searchParams.set(k, v);
  for (const r of options.resource ?? []) url.searchParams.append('resource', r);
  const back = await new Browser(t).signIn(url, options.username, options.password);
  const code = new URL(back.headers.get('location') ?? 'x:').searchParams.get('code');
  if (!code) throw new Error(`sign-in did not give a code (${back.status})`);
  const res = await t.post('/token', {
    grant_type: 'authorization_code',
    client_id: options.clientId,
    code,
    redirect_uri: options.redirectUri,
    code_verifier: verifier,
  });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}
