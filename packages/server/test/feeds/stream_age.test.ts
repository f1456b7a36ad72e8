import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createVerifier } from '@latchkey/sdk/verify';
import { basicAuth, startTestIdp } from '@latchkey/testkit';
import { openSse } from './sse_reader.ts';

test('LATCHKEY_FEED_MAX_STREAM_AGE: streams end at their own moment and the SDK resumes from its cursor without losing an entry', {
  timeout: 30_000,
}, async () => {
  const t = await startTestIdp({ config: { feedMaxStreamAge: 2, feedHeartbeat: 1 } });
  try {
    const c = await t.register({ client_id: 'orders', audiences: ['https://orders.internal'] });
    const raw = await openSse(`${t.issuer}/feeds/stream?streams=revocations`, {
      ca: t.caPem,
      headers: { authorization: basicAuth(c as never) },
    });
    const opened = Date.now();
    const verifier = await createVerifier({
      issuer: t.issuer,
      audience: 'https://orders.internal',
      credentials: { clientId: c.client_id, clientSecret: c.client_secret },
      fetch: t.fetch,
    });
    // Revocations all along, across every stream's end and reconnection.
    const revoked: string[] = [];
    const until = Date.now() + 5000;
    while (Date.now() < until) {
      const token = (
        await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth(c as never) })
      ).body.access_token as string;
      assert.equal((await t.post('/revoke', { token }, { authorization: basicAuth(c as never) })).status, 200);
      revoked.push(token);
      await new Promise((r) => setTimeout(r, 100));
    }
    // The raw stream was ended by the IdP between 75% and 100% of 2 s (plus a heartbeat tick).
    await raw.done;
    const lasted = Date.now() - opened;
    assert.ok(raw.ended() && lasted >= 1400, `ended after ${lasted} ms`);
    // Every revocation reached the verifier, whose stream the IdP ended meanwhile as it did the raw one.
    const deadline = Date.now() + 3000;
    while (verifier.health().revocations.entries < revoked.length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(verifier.health().revocations.entries, revoked.length);
    for (const token of revoked)
      await assert.rejects(verifier.verify(token), (err: { code: string }) => err.code === 'token_revoked');
    assert.equal(verifier.health().revocations.feed, 'connected');
    verifier.close();
  } finally {
    await t.close();
  }
});
