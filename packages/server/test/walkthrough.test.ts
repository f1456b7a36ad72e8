import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { startTestIdp } from '@latchkey/testkit';
import { startOrdersService } from '../../../examples/orders_service.ts';

test('README walk-through: register a service, get a token, a service verifies it', async () => {
  const t = await startTestIdp();
  const orders = await startOrdersService({ issuer: t.issuer, audience: 'https://orders.internal', fetch: t.fetch as never });
  try {
    const caller = await t.register({ client_id: 'checkout', audiences: ['https://orders.internal'], scope: 'orders:read' });
    const weak = await t.register({ client_id: 'reporting', audiences: ['https://orders.internal'] });
    const token = async (c: Record<string, string>) =>
      (await t.post('/token', { grant_type: 'client_credentials', resource: 'https://orders.internal' }, { authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}` })).body.access_token as string;
    const url = `http://127.0.0.1:${(orders.address() as AddressInfo).port}/orders`;
    const ok = await fetch(url, { headers: { authorization: `Bearer ${await token(caller as never)}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { orders: [], caller: 'checkout' });
    const noScope = await fetch(url, { headers: { authorization: `Bearer ${await token(weak as never)}` } });
    assert.equal(noScope.status, 403);
    const forged = await fetch(url, { headers: { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' } });
    assert.equal(forged.status, 401);
    assert.equal((await fetch(url)).status, 401);
  } finally {
    orders.close();
    await t.close();
  }
});
