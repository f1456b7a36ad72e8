// Issue 11, finding 9: unauthenticated traffic cannot grow the audit log without bound.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { basicAuth, startTestIdp, type TestIdp, auditEvents } from '@latchkey/testkit';

describe('repeated anonymous failures are counted, not written one by one', () => {
  let t: TestIdp;
  before(async () => {
    t = await startTestIdp({ config: { auditAggregateWindow: 1, authFailureLimit: 5 } });
  });
  after(() => t.close());

  const rows = async (type: string) => {
    await t.idp.audit.flush();
    return auditEvents(t.idp.storage, { type, limit: 100_000 });
  };

  test('300 wrong admin bearers and 300 credential-less token requests from one source write a handful of rows that still count every one', async () => {
    const adminBefore = (await rows('admin.auth_failed')).length;
    const clientBefore = (await rows('client.auth_failed')).length;
    const started = Date.now();
    for (let i = 0; i < 300; i++) {
      assert.equal(
        (await t.fetch(`${t.issuer}/admin/clients`, { headers: { authorization: `Bearer wrong-${i}` } })).status,
        401,
      );
      assert.equal((await t.post('/token', { grant_type: 'client_credentials' })).status, 401);
    }
    // A real client's wrong secret is still one event per failure (up to the rate limit), and the 429s after it are counted.
    const c = await t.register({ audiences: ['https://orders.internal'] });
    for (let i = 0; i < 20; i++)
      await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth(c.client_id, 'wrong') });
    // At most two rows (the first, then the count) per one-second window that passed.
    const bound = 2 * (Math.ceil((Date.now() - started) / 1000) + 1);
    await new Promise((r) => setTimeout(r, 1500)); // the window closes and the counts are written
    const admin = (await rows('admin.auth_failed')).slice(adminBefore);
    const client = (await rows('client.auth_failed')).slice(clientBefore);
    assert.ok(admin.length <= bound && admin.length < 30, `${admin.length} admin rows (bound ${bound})`);
    const counted = (es: typeof admin) =>
      es.reduce((n, e) => n + (e.detail?.aggregated ? Number(e.detail.count) : 1), 0);
    assert.equal(counted(admin), 300);
    const noCreds = client.filter((e) => e.reason === 'no_credentials');
    assert.ok(noCreds.length <= bound && noCreds.length < 30, `${noCreds.length} no_credentials rows (bound ${bound})`);
    assert.equal(counted(noCreds), 300);
    assert.equal(
      client.filter((e) => e.reason === 'bad_secret' && e.client_id === c.client_id).length,
      5,
      'each failure against a real client is its own event',
    );
    assert.equal(counted(client.filter((e) => e.reason === 'rate_limited')), 15);
  });
});
