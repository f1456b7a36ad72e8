import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createVerifier, VerifyError } from '@latchkey/sdk/verify';
import { basicAuth, FakeClock, startTestIdp, type TestIdp } from '@latchkey/testkit';

const AUD = 'https://orders.internal';
const codeOf = async (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof VerifyError ? e.code : `unexpected: ${String(e)}`),
  );
const waitFor = async (cond: () => Promise<boolean>, ms: number): Promise<void> => {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/**
 * The SDK's verifier with the IdP's Token Status Lists as a second source of revocations: when it
 * has no feed (no credentials), when its feed is cut (a network fault on the feed path only),
 * and always when asked to.
 */
describe('SDK verifier: Token Status List as a second source of revocations', () => {
  let t: TestIdp;
  let caller: Record<string, string>;
  let service: Record<string, string>;
  const token = async () =>
    (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth(caller) })).body
      .access_token as string;
  const revoke = async (tok: string) =>
    assert.equal((await t.post('/revoke', { token: tok }, { authorization: basicAuth(caller) })).status, 200);
  /** t.fetch, counting status list requests, and refusing the feed paths while `cut` is on. */
  const faulty = () => {
    const state = { cut: false, listFetches: 0 };
    const f: typeof fetch = async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.includes('/sl/')) state.listFetches++;
      if (state.cut && url.includes('/feeds/')) throw new TypeError('fetch failed (feed path cut)');
      return t.fetch(input, init);
    };
    return { f, state };
  };

  before(async () => {
    t = await startTestIdp();
    caller = (await t.register({ audiences: [AUD] })) as Record<string, string>;
    service = (await t.register({ audiences: ['https://inventory.internal'] })) as Record<string, string>;
  });
  after(async () => {
    await t.close();
  });

  test('no credentials, no feed: a revoked token is refused once the list is fetched again (its ttl)', async () => {
    const clock = new FakeClock();
    const { f, state } = faulty();
    const v = await createVerifier({ issuer: t.issuer, audience: AUD, fetch: f, clock });
    try {
      const tok = await token();
      assert.equal(await codeOf(v.verify(tok)), 'ok');
      assert.equal(state.listFetches, 1, 'the first use waits for the list');
      assert.equal(v.health().statusLists?.lists, 1);
      await revoke(tok);
      // Within the list's ttl (60 s) the copy held still says VALID: no request per verification.
      assert.equal(await codeOf(v.verify(tok)), 'ok');
      assert.equal(state.listFetches, 1);
      clock.advance(61_000);
      // Past the ttl: fetched again in the background, then refused.
      await waitFor(async () => (await codeOf(v.verify(tok))) === 'token_revoked', 3000);
      assert.equal(state.listFetches, 2);
      // Another token of the same list is still fine.
      assert.equal(await codeOf(v.verify(await token())), 'ok');
    } finally {
      v.close();
    }
  });

  test('with a feed: lists are not consulted while it answers; when it is cut, they stand in', async () => {
    const clock = new FakeClock();
    const { f, state } = faulty();
    const v = await createVerifier({
      issuer: t.issuer,
      audience: AUD,
      fetch: f,
      clock,
      pollInterval: 1,
      credentials: { clientId: service.client_id!, clientSecret: service.client_secret! },
    });
    try {
      await waitFor(async () => v.health().revocations.feed === 'connected', 3000);
      const tok = await token();
      assert.equal(await codeOf(v.verify(tok)), 'ok');
      assert.equal(state.listFetches, 0, 'the feed answers: no status list fetched');
      // The feed path fails from now on (a proxy that breaks it); the stream drops and polls fail.
      state.cut = true;
      const stream = v.health().revocations.feed;
      await t.idp.close().catch(() => undefined);
      t = await startTestIdp({ dataDir: t.dataDir, port: Number(new URL(t.issuer).port), adminToken: t.adminToken });
      await waitFor(async () => v.health().revocations.feed !== 'connected', 5000);
      assert.equal(stream, 'connected');
      clock.advance(3000);
      // The revocation the feed cannot bring: the status list says so.
      await revoke(tok);
      await waitFor(async () => (await codeOf(v.verify(tok))) === 'token_revoked', 3000);
      assert.ok(state.listFetches >= 1);
    } finally {
      v.close();
    }
  });

  test("statusList 'always' consults the list with the feed up; 'off' never", async () => {
    const { f, state } = faulty();
    const creds = { clientId: service.client_id!, clientSecret: service.client_secret! };
    const always = await createVerifier({
      issuer: t.issuer,
      audience: AUD,
      fetch: f,
      credentials: creds,
      statusList: 'always',
    });
    const off = await createVerifier({ issuer: t.issuer, audience: AUD, fetch: f, statusList: 'off' });
    try {
      const tok = await token();
      assert.equal(await codeOf(always.verify(tok)), 'ok');
      assert.equal(state.listFetches, 1);
      assert.equal(await codeOf(off.verify(tok)), 'ok');
      assert.equal(state.listFetches, 1);
      assert.equal(off.health().statusLists, undefined);
    } finally {
      always.close();
      off.close();
    }
  });
});
