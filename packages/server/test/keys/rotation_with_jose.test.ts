import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as jose from 'jose';
import { startTestIdp } from '@latchkey/testkit';

const AUD = 'https://orders.internal';

// jose's createRemoteJWKSet with its default options refetches only on an unknown kid, and at most
// once per 30 s. Because Latchkey publishes the next key a whole rotation ahead, a verifier that
// refetches at one rotation already holds the key of the following one: with 17 s rotations it
// needs a refetch every 34 s, never inside jose's cooldown.
//
// Time is node:test's mocked Date, which jose's cooldown and the IdP's system clock both read:
// every loop moves it one second and runs the key schedule, so 51 s of rotations take about one.
test('three rotations while jose (default options) verifies fresh tokens continuously: zero failures', async (ctx) => {
  ctx.mock.timers.enable({ apis: ['Date'], now: Date.now() });
  const t = await startTestIdp({ config: { keyRotationInterval: 17, keyCheckInterval: 1, jwksMaxAge: 1 } });
  try {
    const c = await t.register({ audiences: [AUD] });
    const auth = `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`;
    const jwks = jose.createRemoteJWKSet(new URL(`${t.issuer}/jwks`), {
      [jose.customFetch]: t.fetch as jose.FetchImplementation,
    });
    const kids = new Set<string>();
    const failures: string[] = [];
    let verified = 0;
    for (let second = 0; kids.size < 4 && second < 100; second++) {
      const res = await t.post('/token', { grant_type: 'client_credentials' }, { authorization: auth });
      assert.equal(res.status, 200);
      try {
        const { protectedHeader } = await jose.jwtVerify(res.body.access_token, jwks, {
          issuer: t.issuer,
          audience: AUD,
          typ: 'at+jwt',
        });
        kids.add(protectedHeader.kid as string);
        verified++;
      } catch (err) {
        failures.push(`${(err as jose.errors.JOSEError).code}: ${(err as Error).message}`);
      }
      ctx.mock.timers.tick(1000);
      await t.idp.rotator.tick();
    }
    assert.deepEqual(failures, []);
    assert.equal(kids.size, 4, `saw ${kids.size} signing keys (3 rotations) over ${verified} verified tokens`);
  } finally {
    await t.close();
  }
});
