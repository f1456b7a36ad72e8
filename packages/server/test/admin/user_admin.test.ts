import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FeedPage, RevocationEntry } from '@latchkey/protocol';
import { auditEvents, startTestIdp, type TestIdp } from '@latchkey/testkit';

const PASSWORD = 'plum tree at dawn, 1987';

describe('admin API: users', () => {
  let t: TestIdp;
  let service: Record<string, string>;
  const basic = (c: Record<string, string>) =>
    `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`;
  const json = async (res: Response) => ({ status: res.status, body: (await res.json()) as Record<string, any> });
  /** The subjects with a not-before entry on the revocation feed: what every service enforces. */
  const revokedSubjects = async (): Promise<string[]> => {
    const res = await t.fetch(`${t.issuer}/feeds/revocations`, { headers: { authorization: basic(service) } });
    const page = (await res.json()) as FeedPage<RevocationEntry>;
    return page.entries.filter((e) => e.kind === 'subject').map((e) => e.ref);
  };
  const events = async (type: string) => {
    await t.idp.audit.flush();
    return auditEvents(t.idp.storage, { type });
  };

  before(async () => {
    t = await startTestIdp();
    service = (await t.register({ client_id: 'orders', audiences: ['https://orders.internal'] })) as Record<
      string,
      string
    >;
  });
  after(() => t.close());

  test('create: 201 with the user, never a password or its hash; the hash is scrypt at OWASP’s cost; one audited event', async () => {
    const { status, body } = await json(
      await t.admin('/admin/users', {
        username: 'Alice',
        password: PASSWORD,
        email: 'alice@example.com',
        name: 'Alice Liddell',
        roles: ['reader', 'reader', 'writer'],
        groups: ['eu'],
        attributes: { tenant: 'acme', clearance: 2 },
      }),
    );
    assert.equal(status, 201);
    assert.match(body.sub, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { ...body, sub: undefined, created_at: undefined, updated_at: undefined, password_changed_at: undefined },
      {
        sub: undefined,
        username: 'Alice',
        email: 'alice@example.com',
        name: 'Alice Liddell',
        roles: ['reader', 'writer'],
        groups: ['eu'],
        attributes: { tenant: 'acme', clearance: 2 },
        disabled: false,
        password_set: true,
        password_changed_at: undefined,
        must_change_password: false,
        mfa_required: false,
        second_factor: null,
        created_at: undefined,
        updated_at: undefined,
      },
    );
    assert.equal(body.created_at, body.password_changed_at);
    const stored = await t.idp.storage.getUser(body.sub);
    assert.match(stored?.passwordHash ?? '', /^\$scrypt\$ln=17,r=8,p=1\$/);
    const [created] = (await events('user.created')).filter((e) => e.subject === body.sub);
    assert.deepEqual(
      { type: created?.type, actor: created?.actor, outcome: created?.outcome, detail: created?.detail },
      { type: 'user.created', actor: 'admin', outcome: 'success', detail: { username: 'Alice' } },
    );
    const everything = JSON.stringify(await auditEvents(t.idp.storage, { limit: 10_000 }));
    assert.equal(everything.includes(PASSWORD), false, 'the password is in no audit event');
    assert.equal(everything.includes(stored?.passwordHash as string), false, 'nor its hash');
  });

  test('a username is taken whatever its case or compatibility spelling (NFKC): 409 conflict', async () => {
    for (const username of ['alice', 'ALICE', '\uff41\uff4c\uff49\uff43\uff45']) {
      const { status, body } = await json(await t.admin('/admin/users', { username, password: PASSWORD }));
      assert.equal(status, 409, username);
      assert.equal(body.error, 'conflict');
    }
  });

  test('the password policy: too short, breached, containing the username → 400 validation_failed naming the rule', async () => {
    const cases: [string, string][] = [
      ['short pw', 'too_short'],
      ['qwerty123456', 'breached'],
      ['i am bob the builder', 'contains_username'],
    ];
    for (const [password, rule] of cases) {
      const { status, body } = await json(await t.admin('/admin/users', { username: 'bob', password }));
      assert.equal(status, 400, password);
      assert.equal(body.error, 'validation_failed');
      assert.equal(body.errors[0].path, '/password');
      assert.match(body.errors[0].message, new RegExp(`^${rule}: `));
      assert.equal(JSON.stringify(body).includes(password), false, 'the refused password is not echoed');
    }
    assert.equal((await t.admin('/admin/users/bob', undefined, 'GET')).status, 404, 'nothing was created');
  });

  test('bad input: unknown members, bad usernames (or sub-shaped ones), wrong types, wrong content type, malformed JSON → 4xx', async () => {
    const bad: [unknown, number][] = [
      [{ username: 'carol', password: PASSWORD, admin: true }, 400],
      [{ username: 'carol/../x', password: PASSWORD }, 400],
      [{ username: 'x'.repeat(65), password: PASSWORD }, 400],
      [{ username: '0b4ad1c2-7d3e-4f5a-9b6c-1d2e3f4a5b6c', password: PASSWORD }, 400],
      [{ username: 'carol', password: PASSWORD, roles: 'reader' }, 400],
      [{ username: 'carol', password: PASSWORD, roles: ['ok', 'bad\u0000'] }, 400],
      [{ username: 'carol', password: PASSWORD, email: 'not an address' }, 400],
      [{ username: 'carol', password: PASSWORD, generate_password: true }, 400],
      [{ username: 'carol', password: 'x'.repeat(2000) }, 400],
      [{}, 400],
    ];
    for (const [body, status] of bad) {
      const res = await t.admin('/admin/users', body);
      assert.equal(res.status, status, JSON.stringify(body).slice(0, 80));
      assert.equal(((await res.json()) as { error: string }).error, 'validation_failed');
    }
    const headers = { authorization: `Bearer ${t.adminToken}` };
    const text = await t.fetch(`${t.issuer}/admin/users`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'text/plain' },
      body: 'username=carol',
    });
    assert.equal(text.status, 415);
    const broken = await t.fetch(`${t.issuer}/admin/users`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: '{"username":',
    });
    assert.equal(broken.status, 400);
    const anonymous = await t.fetch(`${t.issuer}/admin/users`);
    assert.equal(anonymous.status, 401);
    assert.equal((await t.admin('/admin/users?limit=0', undefined, 'GET')).status, 400);
    assert.equal((await t.admin('/admin/users?limit=abc', undefined, 'GET')).status, 400);
  });

  test('a generated password is shown once, and the user must change it at the next login', async () => {
    const created = await json(await t.admin('/admin/users', { username: 'dave', generate_password: true }));
    assert.equal(created.status, 201);
    assert.match(created.body.password, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(created.body.must_change_password, true);
    const shown = await json(await t.admin('/admin/users/dave', undefined, 'GET'));
    assert.equal(shown.body.password, undefined);
    const hash = (await t.idp.storage.getUser(created.body.sub))?.passwordHash ?? null;
    const { PasswordHasher } = await import('../../src/users/password_hash.ts');
    assert.equal(
      await new PasswordHasher().verify(created.body.password, hash),
      true,
      'the shown password is the one stored',
    );
    const none = await json(await t.admin('/admin/users', { username: 'erin' }));
    assert.equal(none.body.password_set, false, 'a user may start without a password');
  });

  test('show by sub or by username (any case); list in pages; unknown → 404 not_found', async () => {
    const alice = await json(await t.admin('/admin/users/ALICE', undefined, 'GET'));
    assert.equal(alice.body.username, 'Alice');
    assert.deepEqual((await json(await t.admin(`/admin/users/${alice.body.sub}`, undefined, 'GET'))).body, alice.body);
    const missing = await json(await t.admin('/admin/users/nobody', undefined, 'GET'));
    assert.deepEqual([missing.status, missing.body.error], [404, 'not_found']);
    const first = await json(await t.admin('/admin/users?limit=2', undefined, 'GET'));
    assert.deepEqual(
      first.body.users.map((u: { username: string }) => u.username),
      ['Alice', 'dave'],
    );
    const rest = await json(await t.admin(`/admin/users?limit=2&after=${first.body.next}`, undefined, 'GET'));
    assert.deepEqual(
      rest.body.users.map((u: { username: string }) => u.username),
      ['erin'],
    );
    assert.equal(rest.body.next, null);
  });

  test('roles and groups: adding keeps tokens; taking one away revokes the user’s tokens at every service', async () => {
    const alice = (await json(await t.admin('/admin/users/alice', undefined, 'GET'))).body;
    const added = await json(
      await t.admin('/admin/users/alice/roles', { roles: ['reader', 'writer', 'auditor'] }, 'PUT'),
    );
    assert.deepEqual(added.body.roles, ['reader', 'writer', 'auditor']);
    assert.equal((await revokedSubjects()).includes(alice.sub), false, 'adding a role revokes nothing');
    const removed = await json(await t.admin('/admin/users/alice/groups', { groups: [] }, 'PUT'));
    assert.deepEqual(removed.body.groups, []);
    assert.equal((await revokedSubjects()).includes(alice.sub), true, 'a group taken away revokes');
    const updates = (await events('user.updated')).filter((e) => e.subject === alice.sub);
    assert.deepEqual(
      updates.map((e) => e.detail),
      [
        { username: 'Alice', roles: { added: ['auditor'], removed: [] }, tokens_revoked: false },
        { username: 'Alice', groups: { added: [], removed: ['eu'] }, tokens_revoked: true },
      ],
    );
    const patched = await json(
      await t.admin('/admin/users/alice', { name: null, attributes: { tenant: 'umbrella' } }, 'PATCH'),
    );
    assert.deepEqual([patched.body.name, patched.body.attributes], [null, { tenant: 'umbrella' }]);
    assert.equal((await t.admin('/admin/users/alice', {}, 'PATCH')).status, 400, 'nothing to change');
  });

  test('disable revokes the user’s tokens and shows disabled; enable; a new password revokes too; delete revokes and forgets', async () => {
    const created = (await json(await t.admin('/admin/users', { username: 'frank', password: PASSWORD }))).body;
    const disabled = await json(await t.admin('/admin/users/frank/disable', {}));
    assert.equal(disabled.body.disabled, true);
    assert.equal((await revokedSubjects()).includes(created.sub), true);
    const enabled = await json(await t.admin('/admin/users/frank/enable', {}));
    assert.equal(enabled.body.disabled, false);

    const before = (await revokedSubjects()).filter((s) => s === created.sub).length;
    const reset = await json(await t.admin('/admin/users/frank/password', { generate: true }));
    assert.equal(reset.status, 200);
    assert.match(reset.body.password, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(reset.body.must_change_password, true);
    assert.equal((await revokedSubjects()).filter((s) => s === created.sub).length, before + 1);
    assert.equal((await t.admin('/admin/users/frank/password', { password: 'qwerty123456' })).status, 400);
    assert.equal((await t.admin('/admin/users/frank/password', {})).status, 400, 'a password or generate');
    const set = (await events('user.password_set')).filter((e) => e.subject === created.sub);
    assert.deepEqual(
      set.map((e) => e.detail),
      [{ username: 'frank', generated: true, must_change: true }],
    );

    const deleted = await t.admin('/admin/users/frank', undefined, 'DELETE');
    assert.equal(deleted.status, 204);
    assert.equal((await t.admin('/admin/users/frank', undefined, 'GET')).status, 404);
    assert.equal((await t.admin('/admin/users/frank', undefined, 'DELETE')).status, 404);
    assert.equal((await revokedSubjects()).filter((s) => s === created.sub).length, before + 2);
    const types = (await auditEvents(t.idp.storage, { limit: 10_000 }))
      .filter((e) => e.subject === created.sub)
      .map((e) => e.type);
    assert.deepEqual(types, ['user.created', 'user.disabled', 'user.enabled', 'user.password_set', 'user.deleted']);
  });
});
