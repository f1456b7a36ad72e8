// Issue 11, findings 13, 18 and 19: authentication before parsing, request deadlines and a
// connection cap, and readiness that notices when storage stops taking writes.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { FakeClock, startTestIdp, type TestIdp } from '@latchkey/testkit';

describe('HTTP limits', () => {
  const clock = new FakeClock();
  let t: TestIdp;
  before(async () => {
    t = await startTestIdp({ config: { requestTimeout: 2, maxConnections: 20 }, clock });
  });
  after(() => t.close());

  const port = () => Number(new URL(t.issuer).port);
  const open = () =>
    new Promise<TLSSocket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: port(), ca: t.caPem }, () => resolve(s));
      s.once('error', reject);
    });

  test('admin routes authenticate before the body is read: an anonymous malformed or huge body is 401, not parsed (finding 13)', async () => {
    const anon = await t.fetch(`${t.issuer}/admin/policy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"schema": not json',
    });
    assert.equal(anon.status, 401, 'authentication comes first (a parse error would be 400)');
    const huge = `{"schema":{"a":"${'x'.repeat(12 * 1024 * 1024)}"},"policies":{}}`;
    const started = Date.now();
    const big = await t.fetch(`${t.issuer}/admin/policy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: huge,
    });
    assert.equal(big.status, 401);
    assert.ok(Date.now() - started < 5000);
    const reg = await t.fetch(`${t.issuer}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{broken',
    });
    assert.equal(reg.status, 401);
    // With the admin token the same malformed body is a 400 (parsed, refused).
    const authed = await t.fetch(`${t.issuer}/admin/policy`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: '{"schema": not json',
    });
    assert.equal(authed.status, 400);
  });

  test('a request whose body trickles in is cut off at the deadline (finding 18)', async () => {
    const s = await open();
    const started = Date.now();
    const closed = new Promise<string>((resolve) => {
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('close', () => resolve(got));
    });
    s.write(
      `POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n`,
    );
    const drip = setInterval(() => s.writable && s.write('a'), 200);
    const answer = await closed;
    clearInterval(drip);
    const took = Date.now() - started;
    assert.ok(took < 8000, `held for ${took} ms`);
    assert.match(answer, /^HTTP\/1\.1 408/);
  });

  test('connections past the cap are refused, and served again once others close (finding 18)', async () => {
    const held: TLSSocket[] = [];
    let refusedAt = -1;
    try {
      // The test's own keep-alive connections hold a few of the 20 places already.
      for (let i = 0; i < 40 && refusedAt < 0; i++) {
        try {
          const s = await open();
          s.on('error', () => undefined);
          held.push(s);
        } catch {
          refusedAt = i;
        }
      }
    } finally {
      for (const s of held) s.destroy();
    }
    assert.ok(refusedAt >= 10 && refusedAt <= 20, `refused after ${refusedAt} connections`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await t.fetch(`${t.issuer}/healthz`)).status, 200);
  });

  test('readiness fails when storage refuses writes though it still answers reads (finding 19)', async () => {
    const db = new Database(join(t.dataDir, 'latchkey.db'));
    try {
      db.exec(
        "CREATE TRIGGER no_writes BEFORE UPDATE ON settings BEGIN SELECT RAISE(ABORT, 'disk full'); END; CREATE TRIGGER no_inserts BEFORE INSERT ON settings BEGIN SELECT RAISE(ABORT, 'disk full'); END",
      );
      clock.advance(2001); // past the probe's two-second memory
      const res = await t.fetch(`${t.issuer}/readyz`);
      assert.equal(res.status, 503);
      assert.deepEqual(((await res.json()) as { checks: Record<string, string> }).checks.storage, 'failed');
      db.exec('DROP TRIGGER no_writes; DROP TRIGGER no_inserts');
      clock.advance(2001);
      assert.equal((await t.fetch(`${t.issuer}/readyz`)).status, 200);
    } finally {
      db.close();
    }
  });
});
