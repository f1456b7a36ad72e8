import assert from 'node:assert/strict';
import { test } from 'node:test';
import { basicAuth, startTestIdp } from '@latchkey/testkit';
import { openSse } from '../feeds/sse_reader.ts';

test('GET /metrics: request latency by route and status class, open streams and their lag, notifications, signing-key age', async () => {
  const t = await startTestIdp();
  try {
    const c = await t.register({ audiences: ['https://orders.internal'] });
    for (let i = 0; i < 3; i++)
      assert.equal(
        (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth(c as never) })).status,
        200,
      );
    assert.equal(
      (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: 'Basic eDp5' })).status,
      401,
    );
    const stream = await openSse(`${t.issuer}/feeds/stream?streams=revocations`, {
      ca: t.caPem,
      headers: { authorization: basicAuth(c as never) },
    });
    const scrape = async () =>
      (await t.fetch(`${t.issuer}/metrics`, { headers: { authorization: `Bearer ${t.adminToken}` } })).text();
    const text = await scrape();
    const value = (line: string) =>
      Number(new RegExp(`^${line.replace(/[{}"+]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.equal(value('latchkey_http_request_duration_seconds_count{method="POST",route="/token",status="2xx"}'), 3);
    assert.equal(value('latchkey_http_request_duration_seconds_count{method="POST",route="/token",status="4xx"}'), 1);
    assert.equal(value('latchkey_feed_streams'), 1);
    assert.equal(value('latchkey_feed_lag_entries'), 0);
    assert.equal(value('latchkey_storage_notifications_connected'), 1);
    const age = value('latchkey_signing_key_age_seconds');
    assert.ok(age >= 0 && age < 60, `key age ${age}`);
    // No path (and so no id or token) becomes a label: only route patterns.
    assert.ok(!/route="\/admin\/clients\/[^:]/.test(text));
    await stream.close();
  } finally {
    await t.close();
  }
});
