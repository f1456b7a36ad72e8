import type { UserRecord } from '../storage/ports.ts';

/** What a user's scope releases about them (OpenID Connect Core §5.4), for the ID token and /userinfo. */
export function userClaims(user: UserRecord, scope: string | null | undefined): Record<string, unknown> {
  const scopes = new Set((scope ?? '').split(' '));
  const out: Record<string, unknown> = {};
  if (scopes.has('profile')) {
    out.preferred_username = user.username;
    if (user.name !== null) out.name = user.name;
    out.updated_at = user.updatedAt;
  }
  // Latchkey does not verify addresses; §5.1 email_verified says so.
  if (scopes.has('email') && user.email !== null) Object.assign(out, { email: user.email, email_verified: false });
  return out;
}
