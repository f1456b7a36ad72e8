import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { auditEvents, basicAuth, FakeClock, startTestIdp, type TestIdp } from '@latchkey/testkit';

const AUD = 'https://orders.internal';
const basic = basicAuth;
const kidsOf = async (t: TestIdp): Promise<string[]> =>
  ((await (await t.fetch(`${t.issuer}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
const admin = (t: TestIdp, path: string, body?: unknown) =>
  t.fetch(`${t.issuer}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${t.adminToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
const keyList = async (t: TestIdp) =>
  (
    (await (await admin(t, '/admin/keys')).json()) as {
      keys: { kid: string; state: string; created_at: number; activated_at: number | null }[];
    }
  ).keys;
const stateOf = async (t: TestIdp, state: string) => (await keyList(t)).find((k) => k.state === state);

describe('key lifecycle over the admin API', () => {
  // Time moves when the test says so: the rotator's schedule is checked with tick() after advancing.
  const clock = new FakeClock();
  let t: TestIdp;
  let c: Record<string, string>;
  const token = async () =>
    (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basic(c) })).body
      .access_token as string;
  const active = async (tok: string) =>
    (await t.post('/introspect', { token: tok }, { authorization: basic(c) })).body.active as boolean;
  before(async () => {
    // Tokens live 2 s at most, so a retired key may go 2 s after it stops signing.
    t = await startTestIdp({
      config: {
        accessTokenTtl: 2,
        maxAccessTokenTtl: 2,
        clockSkew: 0,
        jwksMaxAge: 1,
        keyCheckInterval: 1,
        keyRotationInterval: 3600,
      },
      clock,
    });
    c = (await t.register({ audiences: [AUD], access_token_ttl: 2 })) as Record<string, string>;
  });
  after(() => t.close());

  test('rotate now: the next key signs, the old one stays published until its tokens expired, a new next appears', async () => {
    const before = await keyList(t);
    const oldCurrent = before.find((k) => k.state === 'current')!;
    const oldNext = before.find((k) => k.state === 'next')!;
    const oldToken = await token();
    const res = await admin(t, '/admin/keys/rotate', { now: true });
    assert.equal(res.status, 200);
    const after = await keyList(t);
    assert.equal(after.find((k) => k.state === 'current')!.kid, oldNext.kid);
    assert.equal(after.find((k) => k.kid === oldCurrent.kid)!.state, 'retired');
    const newNext = after.find((k) => k.state === 'next')!;
    assert.ok(newNext && newNext.kid !== oldNext.kid);
    assert.deepEqual(await kidsOf(t), [oldCurrent.kid, oldNext.kid, newNext.kid].sort());
    const newToken = await token();
    assert.equal(jose.decodeProtectedHeader(newToken).kid, oldNext.kid);
    assert.equal(await active(oldToken), true, 'a token of the retired key is still good');
    // Removal: once the grace (the longest token lifetime, 2 s) has passed, not before.
    clock.advanceSeconds(1);
    await t.idp.rotator.tick();
    assert.ok((await kidsOf(t)).includes(oldCurrent.kid), 'still published while its tokens may be valid');
    clock.advanceSeconds(1);
    await t.idp.rotator.tick();
    assert.ok(!(await kidsOf(t)).includes(oldCurrent.kid), 'the retired key left the JWKS after its tokens expired');
  });

  test('a requested rotation waits for the announce window, then happens without --now', async () => {
    const current = (await stateOf(t, 'current'))!;
    const next = (await stateOf(t, 'next'))!;
    const res = await admin(t, '/admin/keys/rotate', {});
    assert.equal(res.status, 200);
    assert.equal((await stateOf(t, 'current'))!.kid, current.kid, 'a requested rotation does not happen at once');
    // The announce window: JWKS max-age (1 s) + two check intervals (2 s) = 3 s after the next key appeared.
    const due = ((await keyList(t)).find((k) => k.kid === next.kid)!.created_at + 3) * 1000;
    assert.ok(clock.now() < due, 'the window has not passed yet');
    await t.idp.rotator.tick();
    assert.equal((await stateOf(t, 'current'))!.kid, current.kid, 'not within the announce window');
    clock.advance(due - clock.now());
    await t.idp.rotator.tick();
    assert.equal((await stateOf(t, 'current'))!.kid, next.kid);
  });

  test('revoke: the key leaves the JWKS at once and its tokens stop introspecting; signing goes on', async () => {
    const current = (await stateOf(t, 'current'))!;
    const tok = await token();
    assert.equal(await active(tok), true);
    const res = await admin(t, `/admin/keys/${current.kid}/revoke`, {});
    assert.equal(res.status, 200);
    assert.ok(!(await kidsOf(t)).includes(current.kid));
    assert.equal(await active(tok), false);
    const fresh = await token();
    assert.notEqual(jose.decodeProtectedHeader(fresh).kid, current.kid);
    assert.equal(await active(fresh), true);
    assert.equal((await admin(t, `/admin/keys/${current.kid}/revoke`, {})).status, 404);
    assert.equal((await admin(t, '/admin/keys/nope/revoke', {})).status, 404);
    const events = await (t.idp.audit.flush(), auditEvents(t.idp.storage, { type: 'key.revoked' }));
    assert.equal(events.length, 1);
    assert.equal(events[0]!.actor, 'admin');
  });

  test('the admin key API needs the admin token and rejects a bad body', async () => {
    assert.equal((await t.fetch(`${t.issuer}/admin/keys`)).status, 401);
    assert.equal((await admin(t, '/admin/keys/rotate', { now: 'yes' })).status, 400);
  });
});

test('the schedule survives a restart: a key rotates on its original timetable', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-restart-rot-'));
  const config = { jwksMaxAge: 1, keyCheckInterval: 1, keyRotationInterval: 6 };
  const clock = new FakeClock();
  try {
    const first = await startTestIdp({ dataDir, config, clock });
    const k1 = (await stateOf(first, 'current'))!;
    clock.advanceSeconds(2);
    await first.close();
    clock.advanceSeconds(1);
    const second = await startTestIdp({ dataDir, config, clock });
    try {
      assert.equal((await stateOf(second, 'current'))!.kid, k1.kid, 'a restart does not rotate');
      clock.advanceSeconds(2);
      await second.idp.rotator.tick();
      assert.equal((await stateOf(second, 'current'))!.kid, k1.kid, '5 s after activation: not yet');
      clock.advanceSeconds(1);
      await second.idp.rotator.tick();
      const current = (await stateOf(second, 'current'))!;
      assert.notEqual(current.kid, k1.kid, 'rotated on its original timetable');
      assert.equal(current.activated_at! - k1.activated_at!, 6, 'the schedule (6 s) was not reset by the restart');
    } finally {
      await second.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
