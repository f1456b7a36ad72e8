import assert from 'node:assert/strict';
import { test } from 'node:test';
import { basicAuth, parsePrometheus, startTestIdp } from '@latchkey/testkit';
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
    // A request whose path carries an id: the label must be the route pattern, not the path.
    assert.equal((await t.admin(`/admin/clients/${c.client_id}`, undefined, 'GET')).status, 200);
    const scrape = async () =>
      (await t.fetch(`${t.issuer}/metrics`, { headers: { authorization: `Bearer ${t.adminToken}` } })).text();
    const text = await scrape();
    const metrics = parsePrometheus(text);
    const value = (line: string) => metrics.get(line) ?? Number.NaN;
    assert.equal(value('latchkey_http_request_duration_seconds_count{method="POST",route="/token",status="2xx"}'), 3);
    assert.equal(value('latchkey_http_request_duration_seconds_count{method="POST",route="/token",status="4xx"}'), 1);
    assert.equal(value('latchkey_feed_streams'), 1);
    assert.equal(value('latchkey_feed_lag_entries'), 0);
    assert.equal(value('latchkey_storage_notifications_connected'), 1);
    const age = value('latchkey_signing_key_age_seconds');
    assert.ok(age >= 0 && age < 60, `key age ${age}`);
    // No path (and so no id or token) becomes a label: only route patterns.
    assert.equal(
      value('latchkey_http_request_duration_seconds_count{method="GET",route="/admin/clients/:clientId",status="2xx"}'),
      1,
    );
    assert.ok(!/route="\/admin\/clients\/[^:]/.test(text));
    assert.ok(!text.includes(c.client_id));
    await stream.close();
  } finally {
    await t.close();
  }
});
