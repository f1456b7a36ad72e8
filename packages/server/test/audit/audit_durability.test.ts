import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { SqliteStorage } from '@latchkey/server';
import Database from 'better-sqlite3';
import pg from 'pg';
import {
  basicAuth,
  freePort,
  serveCli,
  startPostgresIfConfigured,
  startTestIdp,
  testDatabaseUrl,
  tlsFetch,
  auditEvents,
} from '@latchkey/testkit';

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
      const res = await t.post(
        '/token',
        { grant_type: 'client_credentials' },
        { authorization: basicAuth(c.client_id, c.client_secret) },
      );
      const { jti } = decodeJwt(res.body.access_token);
      // Read storage directly, without flushing the writer first.
      const rows = await auditEvents(t.idp.storage, { type: 'token.issued' });
      assert.deepEqual(
        rows.map((e) => e.detail!.jti),
        [jti],
      );
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
      body: JSON.stringify({
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_basic',
        audiences: [AUD],
      }),
    });
    const c = (await reg.json()) as { client_id: string; client_secret: string };
    const returned: string[] = [];
    let killed = false;
    const issue = async (): Promise<void> => {
      while (!killed) {
        try {
          const res = await f(`${url}/token`, {
            method: 'POST',
            headers: {
              authorization: basicAuth(c.client_id, c.client_secret),
              'content-type': 'application/x-www-form-urlencoded',
            },
            body: 'grant_type=client_credentials',
          });
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
      const logged = new Set(
        (await auditEvents(storage, { type: 'token.issued', limit: 100_000 })).map((e) => e.detail!.jti as string),
      );
      const lost = returned.filter((jti) => !logged.has(jti));
      assert.ok(returned.length >= 300);
      assert.deepEqual(lost, [], `${lost.length} of ${returned.length} returned tokens have no event`);
    } finally {
      await storage.close();
    }
  });
});

describe('a change and its event commit together or not at all', () => {
  const backends: ('sqlite' | 'postgres')[] = testDatabaseUrl() !== undefined ? ['sqlite', 'postgres'] : ['sqlite'];
  for (const backend of backends) {
    test(`(${backend}) when the audit row cannot be written, neither the registration nor the revocation happens, and no token is issued`, async () => {
      const databaseUrl = backend === 'postgres' ? await startPostgresIfConfigured() : undefined;
      const t = await startTestIdp({ databaseUrl });
      let sql: (q: string) => Promise<void>;
      let end: () => Promise<void>;
      if (backend === 'sqlite') {
        const db = new Database(join(t.dataDir, 'latchkey.db'));
        sql = async (q) => void db.exec(q);
        end = async () => void db.close();
      } else {
        const c = new pg.Client({ connectionString: databaseUrl });
        await c.connect();
        sql = async (q) => void (await c.query(q));
        end = () => c.end();
      }
      try {
        const c = await t.register({ audiences: [AUD] });
        const token = (
          await t.post(
            '/token',
            { grant_type: 'client_credentials' },
            { authorization: basicAuth(c.client_id, c.client_secret) },
          )
        ).body.access_token as string;
        const admin = { authorization: `Bearer ${t.adminToken}` };
        // The attacker's (or a full disk's) view: every audit insert now fails.
        await sql(
          backend === 'sqlite'
            ? "CREATE TRIGGER no_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
            : "CREATE FUNCTION no_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql; CREATE TRIGGER no_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION no_audit()",
        );
        const reg = await t.fetch(`${t.issuer}/register`, {
          method: 'POST',
          headers: { ...admin, 'content-type': 'application/json' },
          body: JSON.stringify({ client_id: 'never-registered', audiences: [AUD] }),
        });
        assert.equal(reg.status, 503);
        const revoke = await t.post('/revoke', { token }, { authorization: basicAuth(c.client_id, c.client_secret) });
        assert.equal(revoke.status, 503);
        const issued = await t.post(
          '/token',
          { grant_type: 'client_credentials' },
          { authorization: basicAuth(c.client_id, c.client_secret) },
        );
        assert.equal(issued.status, 503, 'no token without its event');
        await sql(
          backend === 'sqlite'
            ? 'DROP TRIGGER no_audit'
            : 'DROP TRIGGER no_audit ON audit_events; DROP FUNCTION no_audit()',
        );
        assert.equal(await t.idp.storage.getClient('never-registered'), undefined, 'the registration did not happen');
        const active = await t.post(
          '/introspect',
          { token },
          { authorization: basicAuth(c.client_id, c.client_secret) },
        );
        assert.equal(active.body.active, true, 'the revocation did not happen');
        assert.equal((await t.idp.storage.listFeedEvents('revocations', 0, 100, 0)).length, 0);
        const verified = (await (await t.fetch(`${t.issuer}/admin/audit/verify`, { headers: admin })).json()) as {
          ok: boolean;
        };
        assert.equal(verified.ok, true);
      } finally {
        await end();
        await t.close();
      }
    });
  }
});
