import { actorOf } from './admin_token.ts';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { conflict, notFound } from '../errors.ts';
import { adminErrors, Nullable, OptionalBody, typed } from '../http/schemas.ts';
import { KeyConflictError, type KeyRotator } from '../keys/key_rotator.ts';
import { nextRotationAt, type RotationPolicy } from '../keys/rotation_plan.ts';
import type { KeyStore, SigningKeyRecord } from '../storage/ports.ts';

export interface KeyAdminDeps {
  store: Pick<KeyStore, 'listKeys'>;
  rotator: Pick<KeyRotator, 'rotate' | 'revoke'>;
  policy: RotationPolicy;
}

const KeyListing = Type.Object({
  keys: Type.Array(
    Type.Object({
      kid: Type.String(),
      alg: Type.String(),
      state: Type.Enum(['next', 'current', 'retired', 'revoked']),
      created_at: Type.Integer(),
      activated_at: Nullable(Type.Integer()),
      retired_at: Nullable(Type.Integer()),
      remove_after: Nullable(Type.Integer()),
    }),
  ),
  next_rotation_at: Nullable(Type.Integer({ description: 'epoch seconds of the next scheduled rotation' })),
});
const tags = ['admin: keys'];

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
export function registerKeyAdmin(scope: FastifyInstance, deps: KeyAdminDeps): void {
  const app = typed(scope);
  const listing = async () => {
    const keys = await deps.store.listKeys();
    return { keys: keys.map(view), next_rotation_at: nextRotationAt(keys, deps.policy) ?? null };
  };

  app.get('/admin/keys', { schema: { tags, response: { 200: KeyListing, ...adminErrors() } } }, listing);

  app.post(
    '/admin/keys/rotate',
    {
      schema: {
        tags,
        body: OptionalBody(
          Type.Object(
            {
              now: Type.Optional(
                Type.Boolean({ description: 'activate the new key at once instead of after the announce window' }),
              ),
            },
            { additionalProperties: false },
          ),
        ),
        response: { 200: KeyListing, ...adminErrors(400, 409, 415) },
      },
    },
    async (request) => {
      try {
        await deps.rotator.rotate({ now: request.body?.now === true, actor: actorOf(request) });
      } catch (err) {
        if (err instanceof KeyConflictError) throw conflict(err.message);
        throw err;
      }
      return listing();
    },
  );

  app.post(
    '/admin/keys/:kid/revoke',
    {
      schema: {
        tags,
        params: Type.Object({ kid: Type.String({ minLength: 1, maxLength: 128 }) }),
        response: { 200: KeyListing, ...adminErrors(404, 409) },
      },
    },
    async (request) => {
      const { kid } = request.params;
      try {
        if (!(await deps.rotator.revoke(kid, actorOf(request)))) throw notFound('no such published key');
      } catch (err) {
        if (err instanceof KeyConflictError) throw conflict(err.message);
        throw err;
      }
      return listing();
    },
  );
}
