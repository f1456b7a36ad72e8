import { OAuthError } from '../errors.ts';

/** RFC 8707 §2: a resource is an absolute URI with no fragment. */
export function isAbsoluteUri(value: string): boolean {
  if (value.includes('#') || value.length > 2048) return false;
  try {
    const u = new URL(value);
    return u.protocol.length > 1 && /^[a-z][a-z0-9+.-]*:$/i.test(u.protocol);
  } catch {
    return false;
  }
}

/**
 * Chooses the token audience from RFC 8707 `resource` values, each of which the client must be
 * allowed to request (its registration, and the IdP's Cedar policies), or the client's default
 * audience when none was given.
 */
export function chooseAudience(
  resources: string[] | undefined,
  allowed: (audience: string) => boolean,
  defaultAudience: string | undefined,
): string | string[] {
  if (!resources || resources.length === 0) {
    if (!defaultAudience)
      throw new OAuthError('invalid_target', 'no resource given and the client has no default audience');
    if (!allowed(defaultAudience))
      throw new OAuthError('invalid_target', 'the default audience is not one this client (for this user) may have');
    return defaultAudience;
  }
  for (const r of resources) {
    if (!isAbsoluteUri(r))
      throw new OAuthError('invalid_target', 'resource must be an absolute URI without a fragment');
    if (!allowed(r))
      throw new OAuthError('invalid_target', 'resource is not an audience this client (for this user) may have');
  }
  const unique = [...new Set(resources)];
  return unique.length === 1 ? (unique[0] as string) : unique;
}
