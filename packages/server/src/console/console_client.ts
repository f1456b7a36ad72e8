import { epochSeconds, type Clock } from '@latchkey/protocol';
import type { ClientRecord, ClientStore } from '../storage/ports.ts';

/** The console's own OAuth client: public, authorization code with PKCE, back to `/console/`. */
export const CONSOLE_CLIENT_ID = 'latchkey-console';
/** The role a user needs to sign in to the console (`latchkey user roles <user> latchkey-admin`). */
export const CONSOLE_ADMIN_ROLE = 'latchkey-admin';

/** Whether a user may use the console: exists, is enabled and holds `CONSOLE_ADMIN_ROLE`. */
export const mayUseConsole = (user: { disabled: boolean; roles: readonly string[] } | undefined): boolean =>
  user !== undefined && !user.disabled && user.roles.includes(CONSOLE_ADMIN_ROLE);

/**
 * Makes sure the console's client is registered as the issuer needs it (created when someone first
 * asks to sign in with an account, its redirect URI following the issuer), like Keycloak's
 * `security-admin-console`: users sign in
 * to the console through the IdP's own sign-in pages (passwords, second factors, passkeys,
 * lockouts, audit), and the console trades the code for a token issued for the IdP itself.
 */
export async function ensureConsoleClient(
  clients: Pick<ClientStore, 'getClient' | 'createClient' | 'updateClient'>,
  issuer: string,
  clock: Clock,
): Promise<void> {
  const metadata = {
    client_name: 'Latchkey console',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    redirect_uris: [`${issuer}/console/`],
    audiences: [issuer],
    default_audience: issuer,
    scope: 'openid',
  } as ClientRecord['metadata'];
  const existing = await clients.getClient(CONSOLE_CLIENT_ID);
  const now = epochSeconds(clock);
  if (!existing) {
    await clients
      .createClient({
        clientId: CONSOLE_CLIENT_ID,
        metadata,
        secretHash: null,
        registrationTokenHash: 'none: managed by the IdP',
        createdAt: now,
        updatedAt: now,
        disabled: false,
        lockedUntil: null,
      })
      // Another replica created it first.
      .catch(async (err) => {
        if (!(await clients.getClient(CONSOLE_CLIENT_ID))) throw err;
      });
    return;
  }
  if (JSON.stringify(existing.metadata.redirect_uris) !== JSON.stringify(metadata.redirect_uris))
    await clients.updateClient({ ...existing, metadata: { ...existing.metadata, ...metadata }, updatedAt: now });
}
