import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { startTestIdp } from '@latchkey/testkit';
import { startOrdersService } from '../../../examples/orders_service.ts';

test('README walk-through: register two services, get a token, the SDK verifies it in a service, revocation reaches it', async () => {
  const t = await startTestIdp();
  const ordersClient = await t.register({ client_id: 'orders', audiences: ['https://inventory.internal'] });
  const { server, verifier } = await startOrdersService({
    issuer: t.issuer,
    audience: 'https://orders.internal',
    fetch: t.fetch,
    credentials: { clientId: ordersClient.client_id, clientSecret: ordersClient.client_secret },
  });
  try {
    const caller = await t.register({
      client_id: 'checkout',
      audiences: ['https://orders.internal'],
      scope: 'orders:read',
    });
    const weak = await t.register({ client_id: 'reporting', audiences: ['https://orders.internal'] });
    const auth = (c: Record<string, string>) =>
      `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`;
    const token = async (c: Record<string, string>) =>
      (
        await t.post(
          '/token',
          { grant_type: 'client_credentials', resource: 'https://orders.internal' },
          { authorization: auth(c) },
        )
      ).body.access_token as string;
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`;
    const tok = await token(caller as never);
    const ok = await fetch(url, { headers: { authorization: `Bearer ${tok}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { orders: [], caller: 'checkout' });
    const noScope = await fetch(url, { headers: { authorization: `Bearer ${await token(weak as never)}` } });
    assert.equal(noScope.status, 403);
    const forged = await fetch(url, { headers: { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' } });
    assert.equal(forged.status, 401);
    assert.equal((await fetch(url)).status, 401);
    await t.post('/revoke', { token: tok }, { authorization: auth(caller as never) });
    let status = 200;
    for (let i = 0; i < 50 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 20));
      status = (await fetch(url, { headers: { authorization: `Bearer ${tok}` } })).status;
    }
    assert.equal(status, 401, 'the revoked token is refused by the service within a second');
    assert.equal(verifier.health().revocations.feed, 'connected');
  } finally {
    server.close();
    await t.close();
  }
});
