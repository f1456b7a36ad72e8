import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OAuthError } from '../errors.ts';
import { KeyConflictError, type KeyRotator } from '../keys/key_rotator.ts';
import { nextRotationAt, type RotationPolicy } from '../keys/rotation_plan.ts';
import type { KeyStore, SigningKeyRecord } from '../storage/ports.ts';

export interface KeyAdminDeps {
  store: Pick<KeyStore, 'listKeys'>;
  rotator: Pick<KeyRotator, 'rotate' | 'revoke'>;
  policy: RotationPolicy;
  requireAdmin: (request: FastifyRequest) => Promise<void>;
}

const view = (k: SigningKeyRecord) => ({
  kid: k.kid,
  alg: k.alg,
  state: k.state,
  created_at: k.createdAt,
  activated_at: k.activatedAt,
  retired_at: k.retiredAt,
  remove_after: k.removeAfter,
});

/** Admin API over signing keys: list, rotate (scheduled or `now`), revoke. */
export function registerKeyAdmin(app: FastifyInstance, deps: KeyAdminDeps): void {
  const listing = async () => {
    const keys = await deps.store.listKeys();
    return { keys: keys.map(view), next_rotation_at: nextRotationAt(keys, deps.policy) ?? null };
  };

  app.get('/admin/keys', async (request) => {
    await deps.requireAdmin(request);
    return listing();
  });

  app.post('/admin/keys/rotate', async (request) => {
    await deps.requireAdmin(request);
    const body = (request.body ?? {}) as { now?: unknown };
    if (typeof body !== 'object' || (body.now !== undefined && typeof body.now !== 'boolean')) {
      throw new OAuthError('invalid_request', '"now" must be a boolean');
    }
    try {
      await deps.rotator.rotate({ now: body.now === true, actor: 'admin' });
    } catch (err) {
      if (err instanceof KeyConflictError) throw new OAuthError('invalid_request', err.message, 409);
      throw err;
    }
    return listing();
  });

  app.post('/admin/keys/:kid/revoke', async (request) => {
    await deps.requireAdmin(request);
    const { kid } = request.params as { kid: string };
    try {
      if (!(await deps.rotator.revoke(kid, 'admin')))
        throw new OAuthError('invalid_request', 'no such published key', 404);
    } catch (err) {
      if (err instanceof KeyConflictError) throw new OAuthError('invalid_request', err.message, 409);
      throw err;
    }
    return listing();
  });
}
