import { actorOf } from './admin_token.ts';
import { randomBytes, randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { type AuditEvent, type Clock, epochSeconds } from '@latchkey/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import { AdminError, conflict, LatchkeyError, notFound } from '../errors.ts';
import { aboutUser, type ServerEventPayload, type ServerEvents } from '../events.ts';
import { adminErrors, DecimalString, Nullable, Rfc3339, typed } from '../http/schemas.ts';
import type { RevocationLog } from '../revocation/revocation_log.ts';
import { revokeThen } from '../revocation/revoke_then.ts';
import type { UserRecord, UserStore } from '../storage/ports.ts';
import type { PasswordHasher } from '../users/password_hash.ts';
import type { PasswordPolicy } from '../users/password_policy.ts';
import { normaliseUsername, usernameKey } from '../users/username.ts';

export interface UserAdminDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  users: UserStore;
  events: ServerEvents;
  revocations: Pick<RevocationLog, 'revokeNotBefore'>;
  hasher: Pick<PasswordHasher, 'hash'>;
  policy: Pick<PasswordPolicy, 'check'>;
}

const tags = ['admin: users'];
/** A role or group name: what follows `Role::` or `Group::` in Cedar. */
const Name = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f]+$' });
const Names = Type.Array(Name, { maxItems: 100 });
const Email = Type.String({ maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+$' });
const DisplayName = Type.String({ minLength: 1, maxLength: 256, pattern: '^[^\\u0000-\\u001f\\u007f]+$' });
const Attributes = Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' }), Type.Unknown(), {
  maxProperties: 64,
  description: 'Cedar attributes of User::"<sub>"',
});
const Password = Type.String({ minLength: 1, maxLength: 1024 });
const UserParams = Type.Object({ user: Type.String({ minLength: 1, maxLength: 255 }) });

/** A user as the admin API shows it: never the password or its hash. */
const UserView = Type.Object(
  {
    sub: Type.String(),
    username: Type.String(),
    email: Nullable(Type.String()),
    name: Nullable(Type.String()),
    roles: Type.Array(Type.String()),
    groups: Type.Array(Type.String()),
    attributes: Type.Record(Type.String(), Type.Unknown()),
    disabled: Type.Boolean(),
    password_set: Type.Boolean(),
    password_changed_at: Nullable(Rfc3339('when the password was last set')),
    must_change_password: Type.Boolean(),
    mfa_required: Type.Boolean({ description: 'signs in with a second factor' }),
    second_factor: Nullable(Type.Literal('totp', { description: 'an authenticator app (TOTP) is enrolled' })),
    created_at: Rfc3339('when the user was created'),
    updated_at: Rfc3339('when the user last changed'),
    password: Type.Optional(
      Type.String({ description: 'a generated password: shown in this response only, never again' }),
    ),
  },
  { description: 'a user and their state' },
);
type UserViewT = Static<typeof UserView>;

const rfc3339 = (seconds: number) => new Date(seconds * 1000).toISOString();
const view = (u: UserRecord, password?: string): UserViewT => ({
  sub: u.sub,
  username: u.username,
  email: u.email,
  name: u.name,
  roles: u.roles,
  groups: u.groups,
  attributes: u.attributes,
  disabled: u.disabled,
  password_set: u.passwordHash !== null,
  password_changed_at: u.passwordChangedAt === null ? null : rfc3339(u.passwordChangedAt),
  must_change_password: u.mustChangePassword,
  mfa_required: u.mfaRequired,
  second_factor: u.totpSecret !== null ? 'totp' : null,
  created_at: rfc3339(u.createdAt),
  updated_at: rfc3339(u.updatedAt),
  ...(password ? { password } : {}),
});

const unique = (names: readonly string[]) => [...new Set(names)];
const members = (before: readonly string[], after: readonly string[]) => ({
  added: after.filter((n) => !before.includes(n)),
  removed: before.filter((n) => !after.includes(n)),
});
/** A generated password: 128 random bits, in a form a person can type (base64url, 22 characters). */
const generatedPassword = () => randomBytes(16).toString('base64url');

/** A user by `sub`, or by username (what the CLI is given); a 404 when there is none. */
export async function findUser(
  users: Pick<UserStore, 'getUser' | 'getUserByUsername'>,
  ref: string,
): Promise<UserRecord> {
  const user = (await users.getUser(ref)) ?? (await users.getUserByUsername(usernameKey(ref)));
  if (!user) throw notFound('no such user');
  return user;
}

/**
 * Admin API over users (issue 15), behind the admin bearer: create, list, show, change roles,
 * groups and profile, disable, enable, set or reset the password, delete. Taking something away
 * from a user (disable, delete, a new password, a role or group removed) revokes every token they
 * hold at every service through the revocation feed (a subject not-before), so it takes effect
 * within a second rather than when the tokens expire.
 */
export function registerUserAdmin(scope: FastifyInstance, deps: UserAdminDeps): void {
  const app = typed(scope);
  const now = () => epochSeconds(deps.clock);

  const find = (ref: string) => findUser(deps.users, ref);
  const event = <T extends AuditEvent['type']>(
    type: T,
    request: FastifyRequest,
    user: UserRecord,
    detail: ServerEventPayload<T>['detail'],
  ): AuditEvent =>
    deps.events.stage(type, { ...aboutUser(actorOf(request), user.sub, request), detail } as ServerEventPayload<T>);
  /** Stores a change with its event, revoking the user's tokens first when it takes something away. */
  const save = async (next: UserRecord, e: AuditEvent, revoke: boolean): Promise<void> => {
    const store = async () => {
      if (!(await deps.users.updateUser(next, revoke ? undefined : [e]))) throw notFound('no such user');
    };
    if (revoke) await revokeThen(deps, 'subject', next.sub, e, store);
    else {
      await store();
      deps.events.committed(e);
    }
  };
  /** A password the policy accepts, hashed; or a 400 naming the rule it breaks. */
  const hashed = async (password: string, username: string): Promise<string> => {
    const refused = deps.policy.check(password, username);
    if (refused)
      throw new AdminError('validation_failed', refused.message, [
        { in: 'body', path: '/password', message: `${refused.problem}: ${refused.message}` },
      ]);
    return deps.hasher.hash(password);
  };

  app.post(
    '/admin/users',
    {
      schema: {
        tags,
        body: Type.Object(
          {
            username: Type.String({ minLength: 1, maxLength: 256 }),
            password: Type.Optional(Password),
            generate_password: Type.Optional(Type.Boolean({ description: 'make one and show it once' })),
            must_change_password: Type.Optional(Type.Boolean()),
            mfa_required: Type.Optional(
              Type.Boolean({ description: 'sign in with a second factor (enrolled at the next sign-in)' }),
            ),
            email: Type.Optional(Email),
            name: Type.Optional(DisplayName),
            roles: Type.Optional(Names),
            groups: Type.Optional(Names),
            attributes: Type.Optional(Attributes),
          },
          { additionalProperties: false },
        ),
        response: { 201: UserView, ...adminErrors(400, 409) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const username = normaliseUsername(body.username);
      if (!username)
        throw new AdminError('validation_failed', 'the username is not acceptable', [
          {
            in: 'body',
            path: '/username',
            message: 'at most 64 letters, digits and . _ - @ +',
          },
        ]);
      if (body.password !== undefined && body.generate_password)
        throw new AdminError('validation_failed', 'give a password or ask for one to be generated, not both');
      const generated = body.generate_password ? generatedPassword() : undefined;
      const password = body.password ?? generated;
      const at = now();
      const user: UserRecord = {
        sub: randomUUID(),
        username,
        usernameKey: usernameKey(username),
        email: body.email ?? null,
        name: body.name ?? null,
        passwordHash: password === undefined ? null : await hashed(password, username),
        passwordChangedAt: password === undefined ? null : at,
        mustChangePassword: body.must_change_password ?? generated !== undefined,
        roles: unique(body.roles ?? []),
        groups: unique(body.groups ?? []),
        attributes: body.attributes ?? {},
        disabled: false,
        createdAt: at,
        updatedAt: at,
        mfaRequired: body.mfa_required ?? false,
        totpSecret: null,
        totpLastStep: null,
      };
      const e = event('user.created', request, user, { username });
      try {
        await deps.users.createUser(user, [e]);
      } catch (err) {
        if (err instanceof LatchkeyError && err.code === 'storage_conflict') throw conflict('the username is taken');
        throw err;
      }
      deps.events.committed(e);
      return reply.code(201).send(view(user, generated));
    },
  );

  app.get(
    '/admin/users',
    {
      schema: {
        tags,
        querystring: Type.Object(
          {
            after: Type.Optional(Type.String({ maxLength: 256, description: 'the `next` of the previous page' })),
            limit: Type.Optional(DecimalString('users per page, 1 to 1000 (default 100)', 4)),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ users: Type.Array(UserView), next: Nullable(Type.String()) }),
          ...adminErrors(400),
        },
      },
    },
    async (request) => {
      const limit = Number(request.query.limit ?? 100);
      if (limit < 1 || limit > 1000)
        throw new AdminError('validation_failed', 'limit must be 1 to 1000', [
          { in: 'querystring', path: '/limit', message: 'must be 1 to 1000' },
        ]);
      const page = await deps.users.listUsers({
        limit,
        ...(request.query.after ? { after: request.query.after } : {}),
      });
      return { users: page.users.map((u) => view(u)), next: page.next };
    },
  );

  app.get(
    '/admin/users/:user',
    { schema: { tags, params: UserParams, response: { 200: UserView, ...adminErrors(404) } } },
    async (request) => view(await find(request.params.user)),
  );

  app.patch(
    '/admin/users/:user',
    {
      schema: {
        tags,
        params: UserParams,
        body: Type.Object(
          {
            email: Type.Optional(Nullable(Email)),
            name: Type.Optional(Nullable(DisplayName)),
            attributes: Type.Optional(Attributes),
            mfa_required: Type.Optional(Type.Boolean({ description: 'sign in with a second factor' })),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: UserView, ...adminErrors(400, 404) },
      },
    },
    async (request) => {
      const user = await find(request.params.user);
      const body = request.body;
      const next: UserRecord = {
        ...user,
        ...(body.email !== undefined ? { email: body.email } : {}),
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.attributes !== undefined ? { attributes: body.attributes } : {}),
        ...(body.mfa_required !== undefined ? { mfaRequired: body.mfa_required } : {}),
        updatedAt: now(),
      };
      const changed = Object.keys(body);
      // Attributes travel in tokens (a client's user_attributes) and policies may forbid on them:
      // any change of them may take something away, so the tokens issued until now are revoked.
      const revoke = body.attributes !== undefined && !isDeepStrictEqual(body.attributes, user.attributes);
      await save(
        next,
        event('user.updated', request, user, { username: user.username, changed, tokens_revoked: revoke }),
        revoke,
      );
      return view(next);
    },
  );

  for (const member of ['roles', 'groups'] as const)
    app.put(
      `/admin/users/:user/${member}`,
      {
        schema: {
          tags,
          params: UserParams,
          body: Type.Object({ [member]: Names }, { additionalProperties: false }),
          response: { 200: UserView, ...adminErrors(400, 404) },
        },
      },
      async (request) => {
        const user = await find(request.params.user);
        const after = unique((request.body as Record<typeof member, string[]>)[member]);
        const change = members(user[member], after);
        const next: UserRecord = { ...user, [member]: after, updatedAt: now() };
        // Narrowing takes effect now: tokens carrying the removed role or group stop working.
        const revoke = change.removed.length > 0;
        const e = event('user.updated', request, user, {
          username: user.username,
          [member]: change,
          tokens_revoked: revoke,
        });
        await save(next, e, revoke);
        return view(next);
      },
    );

  for (const [action, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const)
    app.post(
      `/admin/users/:user/${action}`,
      { schema: { tags, params: UserParams, response: { 200: UserView, ...adminErrors(404) } } },
      async (request) => {
        const user = await find(request.params.user);
        const next: UserRecord = { ...user, disabled, updatedAt: now() };
        const e = event(disabled ? 'user.disabled' : 'user.enabled', request, user, { username: user.username });
        await save(next, e, disabled);
        return view(next);
      },
    );

  app.post(
    '/admin/users/:user/password',
    {
      schema: {
        tags,
        params: UserParams,
        body: Type.Object(
          {
            password: Type.Optional(Password),
            generate: Type.Optional(Type.Boolean({ description: 'make one and show it once' })),
            must_change_password: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 200: UserView, ...adminErrors(400, 404) },
      },
    },
    async (request) => {
      const user = await find(request.params.user);
      const body = request.body;
      if ((body.password === undefined) === !body.generate)
        throw new AdminError('validation_failed', 'give a password, or generate: true');
      const generated = body.generate ? generatedPassword() : undefined;
      const at = now();
      const next: UserRecord = {
        ...user,
        passwordHash: await hashed((body.password ?? generated) as string, user.username),
        passwordChangedAt: at,
        mustChangePassword: body.must_change_password ?? generated !== undefined,
        updatedAt: at,
      };
      const e = event('user.password_set', request, user, {
        username: user.username,
        generated: generated !== undefined,
        must_change: next.mustChangePassword,
      });
      // Whoever held the old password holds no token beyond this moment.
      await save(next, e, true);
      return view(next, generated);
    },
  );

  app.post(
    '/admin/users/:user/second-factor/reset',
    { schema: { tags, params: UserParams, response: { 200: UserView, ...adminErrors(404) } } },
    async (request) => {
      const user = await find(request.params.user);
      const next: UserRecord = { ...user, totpSecret: null, totpLastStep: null, updatedAt: now() };
      const e = event('user.second_factor_reset', request, user, { username: user.username });
      // A lost or stolen authenticator: whatever it opened is closed too.
      await save(next, e, true);
      await deps.users.setRecoveryCodes(user.sub, []);
      await deps.users.removePasskeys(user.sub);
      return view(next);
    },
  );

  app.delete(
    '/admin/users/:user',
    { schema: { tags, params: UserParams, response: { 204: Type.Null(), ...adminErrors(404) } } },
    async (request, reply) => {
      const user = await find(request.params.user);
      const e = event('user.deleted', request, user, { username: user.username });
      await revokeThen(deps, 'subject', user.sub, e, () => deps.users.deleteUser(user.sub));
      return reply.code(204).send(null);
    },
  );
}
