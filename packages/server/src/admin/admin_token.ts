import type { FastifyRequest } from 'fastify';
import type { ServerEvents } from '../events.ts';
import { invalidToken, requireBearer } from '../http/bearer.ts';
import { hashSecret, newSecret, verifySecret } from '../secrets.ts';
import type { SettingsStore } from '../storage/ports.ts';

const SETTING = 'admin_token_hash';

/**
 * Sets up the bootstrap admin bearer. A configured token replaces the stored hash; with none
 * configured and none stored, a new one is generated and returned once so the caller can
 * print it. Only its hash is kept.
 */
export async function bootstrapAdminToken(
  store: SettingsStore,
  hashKey: Buffer,
  configured: string | undefined,
): Promise<string | undefined> {
  if (configured) {
    await store.setSetting(SETTING, hashSecret(hashKey, configured));
    return undefined;
  }
  const token = newSecret();
  const hash = hashSecret(hashKey, token);
  const stored = await store.setSettingIfAbsent(SETTING, hash);
  return stored === hash ? token : undefined;
}

/**
 * Checks the admin bearer in constant time; a wrong one is audited and answered per RFC 6750. A
 * request is checked once: the app's onRequest hook checks admin routes before their body is
 * read, and the handlers' own calls then cost nothing.
 */
export function adminGuard(deps: {
  settings: Pick<SettingsStore, 'getSetting'>;
  hashKey: Buffer;
  events: ServerEvents;
}) {
  const passed = new WeakSet<FastifyRequest>();
  return async (request: FastifyRequest): Promise<void> => {
    if (passed.has(request)) return;
    const token = requireBearer(request);
    const stored = (await deps.settings.getSetting(SETTING)) ?? null;
    if (!verifySecret(deps.hashKey, token, stored)) {
      await deps.events.emit('admin.auth_failed', {
        actor: 'anonymous',
        outcome: 'failure',
        reason: 'invalid_token',
        request_id: request.id,
        source_ip: request.ip,
      });
      throw invalidToken('the admin token is not valid');
    }
    passed.add(request);
  };
}
