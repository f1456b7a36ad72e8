import { actorOf } from '../admin/admin_token.ts';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import type { PolicyEntity } from '@latchkey/protocol';
import { notFound, validationFailed } from '../errors.ts';
import { adminErrors, AnyObject, DecimalString, Nullable, typed } from '../http/schemas.ts';
import type { PolicyStore } from '../storage/ports.ts';
import { diffBundles } from './policy_diff.ts';
import type { PolicyPublisher } from './policy_publisher.ts';
import type { BundleValidator } from './bundle_validator.ts';
import { RESERVED, withReservedSchema } from './token_policy.ts';

const Name = Type.String({ minLength: 1, maxLength: 256 });
const Id = Type.String({ minLength: 1, maxLength: 1024 });
const Uid = Type.Object({ type: Name, id: Id }, { additionalProperties: false });
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
    description: 'Cedar schema fragments (human-readable syntax) by name',
  }),
  policies: Type.Record(
    Type.String({ minLength: 1, maxLength: 256 }),
    Type.String({ minLength: 1, maxLength: 256 * 1024 }),
    {
      description: 'Cedar policy sets by id',
    },
  ),
  entities: Type.Optional(
    Type.Array(Entity, { maxItems: 200_000, description: 'entity data; without it the active entities are kept' }),
  ),
};
const PushBody = Type.Object(
  {
    ...Content,
    note: Type.Optional(Type.String({ maxLength: 1024 })),
    expected_version: Type.Optional(
      Type.Integer({ minimum: 0, description: 'refuse with 409 unless this is the active version' }),
    ),
  },
  { additionalProperties: false },
);
const Problem = Type.Object(
  {
    source: Type.String(),
    message: Type.String(),
    line: Type.Optional(Type.Integer()),
    column: Type.Optional(Type.Integer()),
  },
  { additionalProperties: true },
);
const Report = Type.Object({ ok: Type.Boolean(), errors: Type.Array(Problem), warnings: Type.Array(Problem) });
const Published = Type.Object({
  version: Type.Integer(),
  digest: Type.String(),
  unchanged: Type.Boolean({ description: 'the bundle equals the active one: no new version' }),
  warnings: Type.Array(Problem),
});
const Summary = {
  version: Type.Integer(),
  digest: Type.String(),
  publishedAt: Type.String(),
  actor: Type.String(),
  note: Nullable(Type.String()),
};
const Version = Type.Object({
  ...Summary,
  schema: Type.Record(Type.String(), Type.String()),
  policies: Type.Record(Type.String(), Type.String()),
  entities: Type.Array(AnyObject),
});
const Changes = Type.Object({
  added: Type.Array(Type.String()),
  removed: Type.Array(Type.String()),
  changed: Type.Array(Type.String()),
});
const VersionNumber = (description: string) => Type.String({ pattern: '^[1-9]\\d{0,14}$', description });
const UidParams = Type.Object({ type: Name, id: Id });
const changed = { 200: Published, 201: Published };
const tags = ['admin: policy'];

export interface PolicyAdminDeps {
  publisher: PolicyPublisher;
  store: Pick<PolicyStore, 'getPolicyVersion' | 'listPolicyVersions'>;
  /** Largest bundle body accepted (bytes). */
  bodyLimit: number;
  validator: Pick<BundleValidator, 'validate'>;
}

const sameUid = (a: { type: string; id: string }, b: { type: string; id: string }): boolean =>
  a.type === b.type && a.id === b.id;

/**
 * The policy store's admin API: validate, publish (push), read, list, diff and roll back versions,
 * and change entity data (roles, groups, memberships, attributes) — each change a new version.
 */
export function registerPolicyAdmin(scope: FastifyInstance, deps: PolicyAdminDeps): void {
  const app = typed(scope);
  const published = (r: Awaited<ReturnType<PolicyPublisher['publish']>>) => ({
    version: r.record.version,
    digest: r.record.digest,
    unchanged: r.unchanged,
    warnings: r.warnings,
  });

  app.post(
    '/admin/policy/validate',
    {
      bodyLimit: deps.bodyLimit,
      schema: {
        tags,
        body: Type.Object(Content, { additionalProperties: false }),
        response: { 200: Report, ...adminErrors(400, 413, 415) },
      },
    },
    async (request) => {
      const body = request.body;
      const active = await deps.store.getPolicyVersion();
      return deps.validator.validate(
        withReservedSchema({
          schema: body.schema,
          policies: body.policies,
          entities: (body.entities as PolicyEntity[] | undefined) ?? active?.entities ?? [],
        }),
        { reserved: RESERVED },
      );
    },
  );

  app.post(
    '/admin/policy',
    {
      bodyLimit: deps.bodyLimit,
      schema: { tags, body: PushBody, response: { ...changed, ...adminErrors(400, 409, 413, 415) } },
    },
    async (request, reply) => {
      const body = request.body;
      const active = await deps.store.getPolicyVersion();
      // Without entities the push keeps the active ones (managed with `latchkey role` / `entity`).
      const r = await deps.publisher.publish(
        {
          schema: body.schema,
          policies: body.policies,
          entities: (body.entities as PolicyEntity[] | undefined) ?? active?.entities ?? [],
        },
        {
          actor: actorOf(request),
          ...(body.note !== undefined ? { note: body.note } : {}),
          ...(body.expected_version !== undefined ? { expectedVersion: body.expected_version } : {}),
        },
      );
      return reply.code(r.unchanged ? 200 : 201).send(published(r));
    },
  );

  app.get('/admin/policy', { schema: { tags, response: { 200: Version, ...adminErrors(404) } } }, async () => {
    const active = await deps.store.getPolicyVersion();
    if (!active) throw notFound('no policy has been published yet');
    return active;
  });

  app.get(
    '/admin/policy/versions',
    {
      schema: {
        tags,
        querystring: Type.Object(
          { limit: Type.Optional(DecimalString('1 to 1000 (default 100)', 4)) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ versions: Type.Array(Type.Object(Summary)) }), ...adminErrors(400) },
      },
    },
    async (request) => {
      const n = Number(request.query.limit ?? 100);
      if (n < 1 || n > 1000) throw validationFailed('limit must be from 1 to 1000');
      return { versions: await deps.store.listPolicyVersions(n) };
    },
  );

  app.get(
    '/admin/policy/versions/:version',
    {
      schema: {
        tags,
        params: Type.Object({ version: VersionNumber('a policy version') }),
        response: { 200: Version, ...adminErrors(400, 404) },
      },
    },
    async (request) => {
      const v = Number(request.params.version);
      const record = await deps.store.getPolicyVersion(v);
      if (!record) throw notFound(`there is no policy version ${v}`);
      return record;
    },
  );

  app.get(
    '/admin/policy/diff',
    {
      schema: {
        tags,
        querystring: Type.Object(
          {
            from: VersionNumber('the older version'),
            to: Type.Optional(VersionNumber('the newer version (default: the active one)')),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            from: Type.Integer(),
            to: Type.Integer(),
            policies: Changes,
            schema: Changes,
            entities: Changes,
          }),
          ...adminErrors(400, 404),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const from = await deps.store.getPolicyVersion(Number(q.from));
      const to =
        q.to === undefined ? await deps.store.getPolicyVersion() : await deps.store.getPolicyVersion(Number(q.to));
      if (!from || !to) throw notFound('no such policy version');
      return { from: from.version, to: to.version, ...diffBundles(from, to) };
    },
  );

  app.post(
    '/admin/policy/rollback',
    {
      schema: {
        tags,
        body: Type.Object(
          { version: Type.Integer({ minimum: 1, description: 'the version to publish again' }) },
          { additionalProperties: false },
        ),
        response: { ...changed, ...adminErrors(400, 404, 415) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const r = await deps.publisher.rollback(body.version, actorOf(request));
      return reply.code(r.unchanged ? 200 : 201).send(published(r));
    },
  );

  /** Sets an entity's attributes and parents (creating it when absent). */
  app.put(
    '/admin/policy/entities/:type/:id',
    {
      schema: {
        tags,
        params: UidParams,
        body: Type.Object(
          { attrs: Type.Optional(Entity.properties.attrs), parents: Type.Optional(Entity.properties.parents) },
          { additionalProperties: false },
        ),
        response: { ...changed, ...adminErrors(400, 415) },
      },
    },
    async (request, reply) => {
      const uid = { type: request.params.type, id: request.params.id };
      const body = request.body;
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
        { actor: actorOf(request), note: `set ${uid.type}::${JSON.stringify(uid.id)}` },
      );
      return reply.code(r.unchanged ? 200 : 201).send(published(r));
    },
  );

  /** Removes an entity, and every membership in it. */
  app.delete(
    '/admin/policy/entities/:type/:id',
    { schema: { tags, params: UidParams, response: { ...changed, ...adminErrors(400, 404) } } },
    async (request, reply) => {
      const uid = { type: request.params.type, id: request.params.id };
      const active = await deps.store.getPolicyVersion();
      if (!active?.entities.some((e) => sameUid(e.uid, uid))) throw notFound('no such entity');
      const r = await deps.publisher.changeEntities(
        (entities) =>
          entities
            .filter((e) => !sameUid(e.uid, uid))
            .map((e) => ({ ...e, parents: e.parents.filter((p) => !sameUid(p, uid)) })),
        { actor: actorOf(request), note: `delete ${uid.type}::${JSON.stringify(uid.id)}` },
      );
      return reply.code(r.unchanged ? 200 : 201).send(published(r));
    },
  );

  /** Adds a parent (a role or group) to an entity, creating the member when absent: `role assign`. */
  app.post(
    '/admin/policy/entities/:type/:id/parents',
    {
      schema: {
        tags,
        params: UidParams,
        body: Type.Object({ parent: Uid }, { additionalProperties: false }),
        response: { ...changed, ...adminErrors(400, 404, 415) },
      },
    },
    async (request, reply) => {
      const uid = { type: request.params.type, id: request.params.id };
      const { parent } = request.body;
      const active = await deps.store.getPolicyVersion();
      if (!active?.entities.some((e) => sameUid(e.uid, parent)))
        throw notFound(`${parent.type}::${JSON.stringify(parent.id)} does not exist; create it first`);
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
          actor: actorOf(request),
          note: `assign ${uid.type}::${JSON.stringify(uid.id)} to ${parent.type}::${JSON.stringify(parent.id)}`,
        },
      );
      return reply.code(r.unchanged ? 200 : 201).send(published(r));
    },
  );

  /** Removes a parent from an entity: `role revoke`. */
  app.delete(
    '/admin/policy/entities/:type/:id/parents/:ptype/:pid',
    {
      schema: {
        tags,
        params: Type.Object({ type: Name, id: Id, ptype: Name, pid: Id }),
        response: { ...changed, ...adminErrors(400) },
      },
    },
    async (request, reply) => {
      const p = request.params;
      const uid = { type: p.type, id: p.id };
      const parent = { type: p.ptype, id: p.pid };
      const r = await deps.publisher.changeEntities(
        (entities) =>
          entities.map((e) =>
            sameUid(e.uid, uid) ? { ...e, parents: e.parents.filter((x) => !sameUid(x, parent)) } : e,
          ),
        {
          actor: actorOf(request),
          note: `revoke ${uid.type}::${JSON.stringify(uid.id)} from ${parent.type}::${JSON.stringify(parent.id)}`,
        },
      );
      return reply.code(r.unchanged ? 200 : 201).send(published(r));
    },
  );
}
