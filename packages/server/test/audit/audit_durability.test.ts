import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { SqliteStorage } from '@latchkey/server';
import { basicAuth, freePort, serveCli, startTestIdp, tlsFetch } from '@latchkey/testkit';

const AUD = 'https://orders.internal';

describe('an event exists for everything that was answered', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('the token.issued event is committed before /token answers', async () => {
    const t = await startTestIdp();
    try {
      const c = await t.register({ audiences: [AUD] });
      const res = await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth(c.client_id, c.client_secret) });
      const { jti } = decodeJwt(res.body.access_token);
      // Read storage directly, without flushing the writer first.
      const rows = await t.idp.storage.listAuditEvents({ type: 'token.issued' });
      assert.deepEqual(rows.map((e) => e.detail!.jti), [jti]);
      assert.equal(t.idp.audit.pending, 0);
    } finally {
      await t.close();
    }
  });

  test('SIGKILL in the middle of a burst of issuances loses no event for a token that reached its client', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-kill-'));
    dirs.push(dir);
    const port = await freePort();
    const url = `https://localhost:${port}`;
    const server = await serveCli({ LATCHKEY_DATA_DIR: dir, LATCHKEY_PORT: String(port) });
    const adminToken = /LATCHKEY_ADMIN_TOKEN=(\S+)/.exec(server.out())![1]!;
    const f = tlsFetch(readFileSync(join(dir, 'ca.pem'), 'utf8'));
    const reg = await f(`${url}/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', audiences: [AUD] }),
    });
    const c = (await reg.json()) as { client_id: string; client_secret: string };
    const returned: string[] = [];
    let killed = false;
    const issue = async (): Promise<void> => {
      while (!killed) {
        try {
          const res = await f(`${url}/token`, { method: 'POST', headers: { authorization: basicAuth(c.client_id, c.client_secret), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
          if (res.status !== 200) throw new Error(`status ${res.status}`);
          returned.push(decodeJwt(((await res.json()) as { access_token: string }).access_token).jti!);
        } catch {
          if (!killed) throw new Error('a request failed before the kill');
          return;
        }
        if (returned.length >= 300 && !killed) {
          killed = true;
          server.child.kill('SIGKILL'); // while the other workers' requests are still in flight
        }
      }
    };
    await Promise.all(Array.from({ length: 24 }, issue));
    await server.exited;
    const storage = new SqliteStorage(join(dir, 'latchkey.db'));
    try {
      const logged = new Set((await storage.listAuditEvents({ type: 'token.issued', limit: 100_000 })).map((e) => e.detail!.jti as string));
      const lost = returned.filter((jti) => !logged.has(jti));
      assert.ok(returned.length >= 300);
      assert.deepEqual(lost, [], `${lost.length} of ${returned.length} returned tokens have no event`);
    } finally {
      await storage.close();
    }
  });
});
