import { createHash } from 'node:crypto';
import type { FastifyReply } from 'fastify';

const escape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

const STYLE = `body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1b1d21;margin:0}
main{max-width:22rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:.5rem;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .3rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #767676;border-radius:.3rem}
input:focus{outline:3px solid #1a5fb4;outline-offset:1px}button{margin-top:1.2rem;width:100%;padding:.7rem;font-size:1rem;
background:#1a5fb4;color:#fff;border:0;border-radius:.3rem;cursor:pointer}button:focus{outline:3px solid #1b1d21}
.error{background:#fbe9e9;color:#8a1c1c;padding:.6rem;border-radius:.3rem}.client{color:#4a4f57;margin:0 0 1rem}
.codes{font-family:ui-monospace,monospace;font-size:1.1rem;columns:2}img{display:block;margin:0 auto}
button.secondary{background:#fff;color:#1a5fb4;border:1px solid #1a5fb4}ul.asks{padding-left:1.2rem}ul.asks li{margin:.4rem 0}`;

/**
 * The one script of the pages: it hands a passkey challenge to the browser's WebAuthn API and posts
 * the answer (W3C WebAuthn Level 3 JSON forms). Everything else works without it; its buttons stay
 * hidden when it does not run.
 */
const WEBAUTHN_SCRIPT = `for (const b of document.querySelectorAll('[data-webauthn]')) {
  b.hidden = false;
  b.addEventListener('click', async () => {
    const form = b.closest('form');
    const say = document.getElementById(b.dataset.webauthn + '-error');
    try {
      const options = JSON.parse(document.getElementById(b.dataset.webauthn).textContent);
      const credential = b.dataset.mode === 'create'
        ? await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
        : await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
      form.elements.credential.value = JSON.stringify(credential.toJSON());
      form.submit();
    } catch (e) {
      say.textContent = 'The passkey was not used (' + e.name + ').';
    }
  });
}`;
const scriptHash = createHash('sha256').update(WEBAUTHN_SCRIPT).digest('base64');

/**
 * Content Security Policy of Latchkey's pages: nothing loads from anywhere; the one script (passkeys)
 * and the one stylesheet are allowed by their hashes, images only inline (the enrolment QR code),
 * forms post only here, no page may frame them.
 */
export const PAGE_CSP = `default-src 'none'; script-src 'sha256-${scriptHash}'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

/** Headers of every page: the CSP, no framing, no caching, no referrer (the URL carries the request). */
export const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': PAGE_CSP,
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
} as const;

/** OpenAPI description of a page route: HTML on 200 and 400, a redirect on 303 (`back` says where). */
export const pageSchema = (summary: string, form: boolean, back: string) => ({
  tags: ['OpenID Connect'],
  summary,
  ...(form ? { consumes: ['application/x-www-form-urlencoded'] } : {}),
  response: {
    200: { description: 'a page (text/html)', content: { 'text/html': { schema: { type: 'string' } } } },
    303: { description: back, type: 'null' },
    400: {
      description: 'a page saying what is wrong (text/html)',
      content: { 'text/html': { schema: { type: 'string' } } },
    },
  },
});

/** Sends the browser on (303 See Other, never cached): back to an application, with the response parameters. */
export const sendBack = (reply: FastifyReply, location: string): FastifyReply =>
  reply.code(303).header('cache-control', 'no-store').header('location', location).send();

/** Sends a page with its headers; `returnTo`, the redirect URI its form may end at (see pageHeaders). */
export const sendPage = (reply: FastifyReply, status: number, body: string, returnTo?: string): FastifyReply =>
  reply.code(status).headers(pageHeaders(returnTo)).send(body);

/**
 * The headers of a page whose form ends in a redirect back to the application: CSP's
 * `form-action` governs the redirects after a submission too (CSP 3 §6.3.1), so the redirect
 * URI's origin (or private-use scheme) joins `'self'` — that one destination and no other.
 */
export function pageHeaders(returnTo: string | undefined): Record<string, string> {
  if (!returnTo) return PAGE_HEADERS;
  const u = new URL(returnTo);
  const source = u.protocol === 'https:' || u.protocol === 'http:' ? u.origin : u.protocol;
  return {
    ...PAGE_HEADERS,
    'content-security-policy': PAGE_CSP.replace("form-action 'self'", `form-action 'self' ${source}`),
  };
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escape(title)}</title><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>
`;
}

/**
 * The sign-in form: plain HTML that works without JavaScript, labelled fields with the
 * autocomplete hints password managers use, the error announced to screen readers.
 */
export function loginPage(options: { tx: string; clientName: string; error?: string; username?: string }): string {
  const error = options.error ? `<p class="error" role="alert" id="error">${escape(options.error)}</p>` : '';
  const described = options.error ? ' aria-describedby="error"' : '';
  return page(
    'Sign in',
    `<h1>Sign in</h1>
<p class="client">to continue to ${escape(options.clientName)}</p>
${error}<form method="post" action="/authorize/login">
<input type="hidden" name="tx" value="${escape(options.tx)}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required autofocus value="${escape(options.username ?? '')}"${described}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${described}>
<button type="submit">Sign in</button>
</form>`,
  );
}

/** A page that says what went wrong when the browser cannot be sent back to the application. */
export function errorPage(title: string, message: string): string {
  return page(title, `<h1>${escape(title)}</h1><p class="error" role="alert">${escape(message)}</p>`);
}

/** The form a user whose password an administrator set must fill in before going on. */
export function passwordChangePage(options: { tx: string; error?: string }): string {
  const error = options.error ? `<p class="error" role="alert" id="error">${escape(options.error)}</p>` : '';
  const described = options.error ? ' aria-describedby="error"' : '';
  return page(
    'Choose a new password',
    `<h1>Choose a new password</h1>
<p class="client">Your password was set by an administrator. Choose your own to continue.</p>
${error}<form method="post" action="/authorize/password">
<input type="hidden" name="tx" value="${escape(options.tx)}">
<label for="new_password">New password</label>
<input id="new_password" name="new_password" type="password" autocomplete="new-password" required${described}>
<label for="confirm_password">New password, again</label>
<input id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" required${described}>
<button type="submit">Save and continue</button>
</form>`,
  );
}

/** Asks the person to confirm a sign-out that came without proof of which application asked. */
export function logoutConfirmPage(options: { confirm: string }): string {
  return page(
    'Sign out',
    `<h1>Sign out?</h1>
<p class="client">You are about to sign out of all applications that use this sign-in.</p>
<form method="post" action="/end_session">
<input type="hidden" name="confirm" value="${escape(options.confirm)}">
<button type="submit">Sign out</button>
</form>`,
  );
}

export function signedOutPage(): string {
  return page('Signed out', '<h1>You are signed out</h1><p class="client">You can close this window.</p>');
}

const alert = (error: string | undefined) =>
  error ? `<p class="error" role="alert" id="error">${escape(error)}</p>` : '';

/** A passkey form: the options as inert JSON, a button the script shows, where its error goes. */
function passkeyForm(options: {
  tx: string;
  action: string;
  mode: 'create' | 'get';
  json: object;
  label: string;
}): string {
  // JSON inside <script type="application/json">: never executed; `<` escaped so it cannot close the element.
  const data = JSON.stringify(options.json).replace(/</g, '\\u003c');
  return `<form method="post" action="${options.action}">
<input type="hidden" name="tx" value="${escape(options.tx)}">
<input type="hidden" name="credential" value="">
<script type="application/json" id="passkey">${data}</script>
<button type="button" data-webauthn="passkey" data-mode="${options.mode}" hidden>${escape(options.label)}</button>
<p class="client" role="status" id="passkey-error"></p>
</form>
<script>${WEBAUTHN_SCRIPT}</script>`;
}

/** The second step: a passkey, a code from the authenticator app, or a recovery code. */
export function secondFactorPage(options: { tx: string; error?: string; totp: boolean; passkey?: object }): string {
  const described = options.error ? ' aria-describedby="error"' : '';
  const passkey = options.passkey
    ? passkeyForm({
        tx: options.tx,
        action: '/authorize/passkey',
        mode: 'get',
        json: options.passkey,
        label: 'Use your passkey',
      })
    : '';
  return page(
    'Second step',
    `<h1>${options.totp ? 'Enter your code' : 'Use your passkey'}</h1>
<p class="client">${options.totp ? 'Open your authenticator app and enter the six-digit code, or one of your recovery codes.' : 'Or enter one of your recovery codes.'}</p>
${alert(options.error)}${passkey}<form method="post" action="/authorize/second-factor">
<input type="hidden" name="tx" value="${escape(options.tx)}">
<label for="code">Code</label>
<input id="code" name="code" autocomplete="one-time-code" inputmode="numeric" required autofocus${described}>
<button type="submit">Continue</button>
</form>`,
  );
}

/** Enrolment: a passkey, or the QR code an authenticator app scans (the secret as text for typing) and its first code. */
export function enrolPage(options: { tx: string; qr: string; text: string; error?: string; passkey?: object }): string {
  const described = options.error ? ' aria-describedby="error"' : '';
  return page(
    'Set up a second step',
    `<h1>Set up your authenticator</h1>
<p class="client">Scan this code with an authenticator app, or type the key below, then enter the code it shows.</p>
<img src="${escape(options.qr)}" alt="QR code of your authenticator key" width="246" height="246">
<p>Key: <code>${escape(options.text)}</code></p>
${alert(options.error)}<form method="post" action="/authorize/enrol">
<input type="hidden" name="tx" value="${escape(options.tx)}">
<label for="code">Code from the app</label>
<input id="code" name="code" autocomplete="one-time-code" inputmode="numeric" required autofocus${described}>
<button type="submit">Turn on</button>
</form>${
      options.passkey
        ? passkeyForm({
            tx: options.tx,
            action: '/authorize/enrol-passkey',
            mode: 'create',
            json: options.passkey,
            label: 'Use a passkey instead',
          })
        : ''
    }`,
  );
}

/** The recovery codes, shown once, and the way on. */
export function recoveryCodesPage(options: { tx: string; codes: string[] }): string {
  return page(
    'Your recovery codes',
    `<h1>Save your recovery codes</h1>
<p class="client">Each works once if you lose your authenticator. They are not shown again.</p>
<ul class="codes">${options.codes.map((c) => `<li>${escape(c)}</li>`).join('')}</ul>
<form method="post" action="/authorize/continue">
<input type="hidden" name="tx" value="${escape(options.tx)}">
<button type="submit">I have saved them — continue</button>
</form>`,
  );
}

/** What each scope the pages know lets an application do, in words; other scopes are shown by name. */
const SCOPE_WORDS: Record<string, string> = {
  openid: 'Know that it is you (your account identifier)',
  profile: 'See your name and username',
  email: 'See your email address',
};

/**
 * Consent (OpenID Connect Core §3.1.2.4): what a third-party application asks for — each scope in
 * words, each resource by name — and two buttons. The answer is remembered for this application.
 */
export function consentPage(options: {
  tx: string;
  clientName: string;
  username: string;
  scopes: string[];
  resources: string[];
}): string {
  const asks = [
    ...options.scopes.map((s) => SCOPE_WORDS[s] ?? `Use the permission “${s}”`),
    ...options.resources.map((r) => `Act for you at ${r}`),
  ];
  return page(
    'Allow access?',
    `<h1>Allow ${escape(options.clientName)}?</h1>
<p class="client">Signed in as ${escape(options.username)}. ${escape(options.clientName)} is asking to:</p>
<ul class="asks">${(asks.length > 0 ? asks : ['Know that you signed in']).map((a) => `<li>${escape(a)}</li>`).join('')}</ul>
<p class="client">Allow only if you trust this application. Your answer is remembered for the next sign-in.</p>
<form method="post" action="/authorize/consent">
<input type="hidden" name="tx" value="${escape(options.tx)}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`,
  );
}
