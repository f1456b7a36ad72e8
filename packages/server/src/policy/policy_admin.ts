import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { Compile } from 'typebox/compile';
import type { PolicyEntity } from '@latchkey/protocol';
import { OAuthError, invalidRequest } from '../errors.ts';
import type { PolicyStore } from '../storage/ports.ts';
import { diffBundles } from './policy_diff.ts';
import type { PolicyPublisher } from './policy_publisher.ts';
import type { BundleValidator } from './bundle_validator.ts';
import { RESERVED, withReservedSchema } from './token_policy.ts';

const Name = Type.String({ minLength: 1, maxLength: 256 });
const Uid = Type.Object(
  { type: Name, id: Type.String({ minLength: 1, maxLength: 1024 }) },
  { additionalProperties: false },
);
const Entity = Type.Object(
  {
    uid: Uid,
    attrs: Type.Record(Type.String({ maxLength: 256 }), Type.Unknown()),
    parents: Type.Array(Uid, { maxItems: 1000 }),
  },
  { additionalProperties: false },
);
const Content = {
  schema: Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Type.String({ maxLength: 1024 * 1024 }), {
    minProperties: 1,
  }),
  policies: Type.Record(
    Type.String({ minLength: 1, maxLength: 256 }),
    Type.String({ minLength: 1, maxLength: 256 * 1024 }),
  ),
  entities: Type.Optional(Type.Array(Entity, { maxItems: 200_000 })),
};
const checkPush = Compile(
  Type.Object(
    {
      ...Content,
      note: Type.Optional(Type.String({ maxLength: 1024 })),
      expected_version: Type.Optional(Type.Integer({ minimum: 0 })),
    },
    { additionalProperties: false },
  ),
);
const checkValidate = Compile(Type.Object(Content, { additionalProperties: false }));
const checkEntityBody = Compile(
  Type.Object(
    { attrs: Type.Optional(Entity.properties.attrs), parents: Type.Optional(Entity.properties.parents) },
    { additionalProperties: false },
  ),
);
const checkParentBody = Compile(Type.Object({ parent: Uid }, { additionalProperties: false }));
const checkRollback = Compile(Type.Object({ version: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }));

export interface PolicyAdminDeps {
  publisher: PolicyPublisher;
  store: Pick<PolicyStore, 'getPolicyVersion' | 'listPolicyVersions'>;
  requireAdmin: (request: FastifyRequest) => Promise<void>;
  /** Largest bundle body accepted (bytes). */
  bodyLimit: number;
  validator: Pick<BundleValidator, 'validate'>;
}

function json<T>(
  request: FastifyRequest,
  check: { Check(v: unknown): v is T; Errors(v: unknown): Iterable<{ instancePath: string; message: string }> },
): T {
  if (!/^application\/json\s*(;|$)/i.test(String(request.headers['content-type'] ?? '')))
    throw new OAuthError('invalid_request', 'the request body must be application/json', 415);
  const body = request.body;
  if (!check.Check(body)) {
    const first = [...check.Errors(body)][0];
    throw invalidRequest(`${first?.instancePath || 'body'}: ${first?.message ?? 'invalid'}`);
  }
  return body;
}

const versionParam = (v: unknown, name: string): number => {
  if (typeof v !== 'string' || !/^\d{1,15}$/.test(v) || Number(v) < 1)
    throw invalidRequest(`${name} must be a policy version number`);
  return Number(v);
};

const sameUid = (a: { type: string; id: string }, b: { type: string; id: string }): boolean =>
  a.type === b.type && a.id === b.id;

/**
 * The policy store's admin API: validate, publish (push), read, list, diff and roll back versions,
 * and change entity data (roles, groups, memberships, attributes) — each change a new version.
 */
export function registerPolicyAdmin(app: FastifyInstance, deps: PolicyAdminDeps): void {
  const published = (r: Awaited<ReturnType<PolicyPublisher['publish']>>) => ({
    version: r.record.version,
    digest: r.record.digest,
    unchanged: r.unchanged,
    warnings: r.warnings,
  });

  app.post('/admin/policy/validate', { bodyLimit: deps.bodyLimit }, async (request) => {
    await deps.requireAdmin(request);
    const body = json(request, checkValidate);
    const active = await deps.store.getPolicyVersion();
    return deps.validator.validate(
      withReservedSchema({
        schema: body.schema,
        policies: body.policies,
        entities: (body.entities as PolicyEntity[] | undefined) ?? active?.entities ?? [],
      }),
      { reserved: RESERVED },
    );
  });

  app.post('/admin/policy', { bodyLimit: deps.bodyLimit }, async (request, reply) => {
    await deps.requireAdmin(request);
    const body = json(request, checkPush);
    const active = await deps.store.getPolicyVersion();
    // Without entities the push keeps the active ones (managed with `latchkey role` / `entity`).
    const r = await deps.publisher.publish(
      {
        schema: body.schema,
        policies: body.policies,
        entities: (body.entities as PolicyEntity[] | undefined) ?? active?.entities ?? [],
      },
      {
        actor: 'admin',
        ...(body.note !== undefined ? { note: body.note } : {}),
        ...(body.expected_version !== undefined ? { expectedVersion: body.expected_version } : {}),
      },
    );
    return reply.code(r.unchanged ? 200 : 201).send(published(r));
  });

  app.get('/admin/policy', async (request) => {
    await deps.requireAdmin(request);
    const active = await deps.store.getPolicyVersion();
    if (!active) throw new OAuthError('invalid_request', 'no policy has been published yet', 404);
    return active;
  });

  app.get('/admin/policy/versions', async (request) => {
    await deps.requireAdmin(request);
    const limit = (request.query as Record<string, unknown>).limit;
    const n = limit === undefined ? 100 : versionParam(limit, 'limit');
    if (n > 1000) throw invalidRequest('limit must be from 1 to 1000');
    return { versions: await deps.store.listPolicyVersions(n) };
  });

  app.get('/admin/policy/versions/:version', async (request) => {
    await deps.requireAdmin(request);
    const v = versionParam((request.params as { version: string }).version, 'version');
    const record = await deps.store.getPolicyVersion(v);
    if (!record) throw new OAuthError('invalid_request', `there is no policy version ${v}`, 404);
    return record;
  });

  app.get('/admin/policy/diff', async (request) => {
    await deps.requireAdmin(request);
    const q = request.query as Record<string, unknown>;
    const from = await deps.store.getPolicyVersion(versionParam(q.from, 'from'));
    const to =
      q.to === undefined
        ? await deps.store.getPolicyVersion()
        : await deps.store.getPolicyVersion(versionParam(q.to, 'to'));
    if (!from || !to) throw new OAuthError('invalid_request', 'no such policy version', 404);
    return { from: from.version, to: to.version, ...diffBundles(from, to) };
  });

  app.post('/admin/policy/rollback', async (request, reply) => {
    await deps.requireAdmin(request);
    const body = json(request, checkRollback);
    const r = await deps.publisher.rollback(body.version, 'admin');
    return reply.code(r.unchanged ? 200 : 201).send(published(r));
  });

  const uidParams = (request: FastifyRequest): { type: string; id: string } => {
    const p = request.params as { type: string; id: string };
    if (p.type.length === 0 || p.type.length > 256 || p.id.length === 0 || p.id.length > 1024)
      throw invalidRequest('entity type and id must be 1 to 256 and 1 to 1024 characters');
    return { type: p.type, id: p.id };
  };

  /** Sets an entity's attributes and parents (creating it when absent). */
  app.put('/admin/policy/entities/:type/:id', async (request, reply) => {
    await deps.requireAdmin(request);
    const uid = uidParams(request);
    const body = json(request, checkEntityBody);
    const r = await deps.publisher.changeEntities(
      (entities) => {
        const existing = entities.find((e) => sameUid(e.uid, uid));
        const next: PolicyEntity = {
          uid,
          attrs: body.attrs ?? existing?.attrs ?? {},
          parents: body.parents ?? existing?.parents ?? [],
        };
        return existing ? entities.map((e) => (e === existing ? next : e)) : [...entities, next];
      },
      { actor: 'admin', note: `set ${uid.type}::${JSON.stringify(uid.id)}` },
    );
    return reply.code(r.unchanged ? 200 : 201).send(published(r));
  });

  /** Removes an entity, and every membership in it. */
  app.delete('/admin/policy/entities/:type/:id', async (request, reply) => {
    await deps.requireAdmin(request);
    const uid = uidParams(request);
    const active = await deps.store.getPolicyVersion();
    if (!active?.entities.some((e) => sameUid(e.uid, uid)))
      throw new OAuthError('invalid_request', 'no such entity', 404);
    const r = await deps.publisher.changeEntities(
      (entities) =>
        entities
          .filter((e) => !sameUid(e.uid, uid))
          .map((e) => ({ ...e, parents: e.parents.filter((p) => !sameUid(p, uid)) })),
      { actor: 'admin', note: `delete ${uid.type}::${JSON.stringify(uid.id)}` },
    );
    return reply.code(r.unchanged ? 200 : 201).send(published(r));
  });

  /** Adds a parent (a role or group) to an entity, creating the member when absent: `role assign`. */
  app.post('/admin/policy/entities/:type/:id/parents', async (request, reply) => {
    await deps.requireAdmin(request);
    const uid = uidParams(request);
    const { parent } = json(request, checkParentBody);
    const active = await deps.store.getPolicyVersion();
    if (!active?.entities.some((e) => sameUid(e.uid, parent)))
      throw new OAuthError(
        'invalid_request',
        `${parent.type}::${JSON.stringify(parent.id)} does not exist; create it first`,
        404,
      );
    const r = await deps.publisher.changeEntities(
      (entities) => {
        const existing = entities.find((e) => sameUid(e.uid, uid));
        if (existing)
          return entities.map((e) =>
            e === existing && !e.parents.some((p) => sameUid(p, parent))
              ? { ...e, parents: [...e.parents, parent] }
              : e,
          );
        return [...entities, { uid, attrs: {}, parents: [parent] }];
      },
      {
        actor: 'admin',
        note: `assign ${uid.type}::${JSON.stringify(uid.id)} to ${parent.type}::${JSON.stringify(parent.id)}`,
      },
    );
    return reply.code(r.unchanged ? 200 : 201).send(published(r));
  });

  /** Removes a parent from an entity: `role revoke`. */
  app.delete('/admin/policy/entities/:type/:id/parents/:ptype/:pid', async (request, reply) => {
    await deps.requireAdmin(request);
    const uid = uidParams(request);
    const p = request.params as { ptype: string; pid: string };
    const parent = { type: p.ptype, id: p.pid };
    const r = await deps.publisher.changeEntities(
      (entities) =>
        entities.map((e) =>
          sameUid(e.uid, uid) ? { ...e, parents: e.parents.filter((x) => !sameUid(x, parent)) } : e,
        ),
      {
        actor: 'admin',
        note: `revoke ${uid.type}::${JSON.stringify(uid.id)} from ${parent.type}::${JSON.stringify(parent.id)}`,
      },
    );
    return reply.code(r.unchanged ? 200 : 201).send(published(r));
  });
}
