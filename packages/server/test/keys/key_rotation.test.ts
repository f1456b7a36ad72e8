import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { startTestIdp, type TestIdp, basicAuth, auditEvents } from '@latchkey/testkit';

const AUD = 'https://orders.internal';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
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
      keys: { kid: string; state: string; activated_at: number | null }[];
    }
  ).keys;
const stateOf = async (t: TestIdp, state: string) => (await keyList(t)).find((k) => k.state === state);

describe('key lifecycle over the admin API', () => {
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
    // Removal: at most grace (2 s) + one check interval later.
    await sleep(3500);
    assert.ok(!(await kidsOf(t)).includes(oldCurrent.kid), 'the retired key left the JWKS after its tokens expired');
  });

  test('a requested rotation waits for the announce window, then happens without --now', async () => {
    const current = (await stateOf(t, 'current'))!;
    const next = (await stateOf(t, 'next'))!;
    const res = await admin(t, '/admin/keys/rotate', {});
    assert.equal(res.status, 200);
    assert.equal((await stateOf(t, 'current'))!.kid, current.kid, 'the next key was published only just now');
    const deadline = Date.now() + 8000;
    while ((await stateOf(t, 'current'))!.kid === current.kid && Date.now() < deadline) await sleep(250);
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
  try {
    const first = await startTestIdp({ dataDir, config });
    const k1 = (await stateOf(first, 'current'))!;
    await sleep(2000);
    await first.close();
    await sleep(1000);
    const second = await startTestIdp({ dataDir, config });
    try {
      assert.equal((await stateOf(second, 'current'))!.kid, k1.kid, 'a restart does not rotate');
      const deadline = Date.now() + 10_000;
      let current = (await stateOf(second, 'current'))!;
      while (current.kid === k1.kid && Date.now() < deadline) {
        await sleep(200);
        current = (await stateOf(second, 'current'))!;
      }
      assert.notEqual(current.kid, k1.kid);
      const age = current.activated_at! - k1.activated_at!;
      assert.ok(
        age >= 6 && age <= 8,
        `rotated ${age}s after the first key activated (schedule: 6 s, not reset by the restart)`,
      );
    } finally {
      await second.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
