import { createHash } from 'node:crypto';

const escape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

const STYLE = `body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1b1d21;margin:0}
main{max-width:22rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:.5rem;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .3rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #767676;border-radius:.3rem}
input:focus{outline:3px solid #1a5fb4;outline-offset:1px}button{margin-top:1.2rem;width:100%;padding:.7rem;font-size:1rem;
background:#1a5fb4;color:#fff;border:0;border-radius:.3rem;cursor:pointer}button:focus{outline:3px solid #1b1d21}
.error{background:#fbe9e9;color:#8a1c1c;padding:.6rem;border-radius:.3rem}.client{color:#4a4f57;margin:0 0 1rem}`;

/**
 * Content Security Policy of Latchkey's pages: nothing loads from anywhere (no scripts at all),
 * the one stylesheet is allowed by its hash, forms post only here, no page may frame them.
 */
export const PAGE_CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

/** Headers of every page: the CSP, no framing, no caching, no referrer (the URL carries the request). */
export const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': PAGE_CSP,
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
} as const;

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
