import { SSF_SCOPE, WORKLOAD_SCOPE } from '@latchkey/protocol';
import { OAuthError } from '../errors.ts';

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by single spaces. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

export function isValidScope(scope: string): boolean {
  return scope.split(' ').every((t) => SCOPE_TOKEN.test(t));
}

/**
 * Scopes that open the IdP's own privileged endpoints (`workload`: a certificate for the caller's
 * identity; `ssf`: Shared Signals streams about every user and service). They are granted only
 * when asked for by name, never as part of the default scope.
 */
export const PRIVILEGED_SCOPES: ReadonlySet<string> = new Set([WORKLOAD_SCOPE, SSF_SCOPE]);

/**
 * The scope to grant: the requested scope when it is a subset of the registered one; the
 * registered scope less the privileged scopes when none was asked for (RFC 6749 §3.3 lets the
 * server apply a default; RFC 9700 §2.3 asks for the least privilege).
 */
export function grantScope(requested: string | undefined, registered: string | undefined): string | undefined {
  const allowed = new Set(registered ? registered.split(' ') : []);
  if (requested === undefined) {
    const byDefault = [...allowed].filter((s) => s.length > 0 && !PRIVILEGED_SCOPES.has(s));
    return byDefault.length > 0 ? byDefault.join(' ') : undefined;
  }
  if (!isValidScope(requested)) throw new OAuthError('invalid_scope', 'scope is malformed');
  const wanted = [...new Set(requested.split(' '))];
  const outside = wanted.filter((s) => !allowed.has(s));
  if (outside.length > 0) throw new OAuthError('invalid_scope', 'scope exceeds what the client is registered for');
  return wanted.join(' ');
}
