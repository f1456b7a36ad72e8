import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { FakeClock, startPostgresIfConfigured, startTestIdp, testDatabaseUrl, type TestIdp } from '@latchkey/testkit';
import { chainHash } from '../../src/storage/audit_chain.ts';
import { type AuditRow, auditRowValues } from '../../src/storage/rows.ts';

const AUD = 'https://orders.internal';
type Sql = (text: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

/** An IdP with some real audit history, and raw SQL access to its database (the attacker's view). */
async function withHistory(
  backend: 'sqlite' | 'postgres',
  run: (t: TestIdp, sql: Sql) => Promise<void>,
): Promise<void> {
  const databaseUrl = backend === 'postgres' ? await startPostgresIfConfigured() : undefined;
  const t = await startTestIdp({ databaseUrl, tls: backend === 'sqlite' });
  let sql: Sql;
  let end: () => Promise<void>;
  if (backend === 'sqlite') {
    const db = new Database(join(t.dataDir, 'latchkey.db'));
    sql = async (text, params = []) => {
      const st = db.prepare(text);
      return st.reader ? (st.all(...params) as Record<string, unknown>[]) : (st.run(...params), []);
    };
    end = async () => void db.close();
  } else {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    let n = 0;
    sql = async (text, params = []) =>
      (
        await client
          .query(
            text.replace(/\?/g, () => `$${++n}`),
            params,
          )
          .finally(() => (n = 0))
      ).rows;
    end = () => client.end();
  }
  try {
    const c = await t.register({ audiences: [AUD] });
    for (let i = 0; i < 5; i++)
      await t.post(
        '/token',
        { grant_type: 'client_credentials' },
        { authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}` },
      );
    await run(t, sql);
  } finally {
    await end();
    await t.close();
  }
}

const admin = async (t: TestIdp, path: string, method = 'GET') => {
  const res = await t.fetch(`${t.issuer}${path}`, { method, headers: { authorization: `Bearer ${t.adminToken}` } });
  return { status: res.status, body: (await res.json()) as any };
};
const verify = async (t: TestIdp) => (await admin(t, '/admin/audit/verify')).body;

const backends: ('sqlite' | 'postgres')[] = testDatabaseUrl() !== undefined ? ['sqlite', 'postgres'] : ['sqlite'];
for (const backend of backends) {
  describe(`audit hash chain (${backend})`, () => {
    test('the chain of real events verifies, with a signed checkpoint', async () => {
      await withHistory(backend, async (t) => {
        assert.equal((await admin(t, '/admin/audit/checkpoints', 'POST')).status, 200);
        const r = await verify(t);
        assert.equal(r.ok, true, JSON.stringify(r));
        assert.ok(r.checked >= 7, `checked ${r.checked}`);
        assert.deepEqual(r.checkpoints, { total: 1, verified: 1, unverifiable: 0 });
      });
    });

    test('an edited event is named', async () => {
      await withHistory(backend, async (t, sql) => {
        await t.idp.audit.flush();
        const [row] = await sql(
          "SELECT seq FROM audit_events WHERE type = 'token.issued' ORDER BY seq LIMIT 1 OFFSET 2",
        );
        await sql('UPDATE audit_events SET actor = ? WHERE seq = ?', ['mallory', row!.seq]);
        assert.deepEqual((await verify(t)).firstBad, { seq: Number(row!.seq), problem: 'content_changed' });
      });
    });

    test('a deleted event is named', async () => {
      await withHistory(backend, async (t, sql) => {
        await t.idp.audit.flush();
        const [row] = await sql(
          "SELECT seq FROM audit_events WHERE type = 'token.issued' ORDER BY seq LIMIT 1 OFFSET 1",
        );
        await sql('DELETE FROM audit_events WHERE seq = ?', [row!.seq]);
        assert.deepEqual((await verify(t)).firstBad, { seq: Number(row!.seq), problem: 'missing' });
      });
    });

    test('deleting the newest events is caught by the checkpoint', async () => {
      await withHistory(backend, async (t, sql) => {
        await admin(t, '/admin/audit/checkpoints', 'POST');
        const [head] = await sql('SELECT MAX(seq) AS seq FROM audit_events');
        await sql('DELETE FROM audit_events WHERE seq >= ?', [Number(head!.seq) - 1]);
        assert.deepEqual((await verify(t)).firstBad, { seq: Number(head!.seq) - 1, problem: 'missing' });
      });
    });

    test('two events swapped (reordered) are named', async () => {
      await withHistory(backend, async (t, sql) => {
        await t.idp.audit.flush();
        const rows = await sql(
          "SELECT seq, actor, type, detail, request_id FROM audit_events WHERE type = 'token.issued' ORDER BY seq LIMIT 2",
        );
        const [a, b] = rows as { seq: number; detail: string; request_id: string }[];
        await sql('UPDATE audit_events SET detail = ?, request_id = ? WHERE seq = ?', [
          b!.detail,
          b!.request_id,
          a!.seq,
        ]);
        await sql('UPDATE audit_events SET detail = ?, request_id = ? WHERE seq = ?', [
          a!.detail,
          a!.request_id,
          b!.seq,
        ]);
        assert.deepEqual((await verify(t)).firstBad, { seq: Number(a!.seq), problem: 'content_changed' });
      });
    });

    test('an inserted event is named; a rewritten chain is caught by the signed checkpoint', async () => {
      await withHistory(backend, async (t, sql) => {
        await admin(t, '/admin/audit/checkpoints', 'POST');
        const [head] = await sql('SELECT MAX(seq) AS seq FROM audit_events');
        const n = Number(head!.seq) - 2;
        // Make room after n (highest first), then forge an event at n+1 with a correct-looking hash.
        for (let s = Number(head!.seq); s > n; s--)
          await sql('UPDATE audit_events SET seq = ? WHERE seq = ?', [s + 1, s]);
        const [prev] = await sql('SELECT hash FROM audit_events WHERE seq = ?', [n]);
        const values = [
          '2026-11-28T00:00:00.000Z',
          'token.issued',
          'success',
          'mallory',
          null,
          null,
          null,
          null,
          null,
          null,
        ];
        const forged = chainHash(prev!.hash as string, n + 1, values);
        await sql(
          'INSERT INTO audit_events (seq, prev_hash, hash, time, type, outcome, actor, subject, client_id, reason, request_id, source_ip, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
          [n + 1, prev!.hash, forged, ...values],
        );
        assert.deepEqual(
          (await verify(t)).firstBad,
          { seq: n + 2, problem: 'chain_broken' },
          'the event after the forged one no longer links to it',
        );
        // The attacker recomputes every hash after the insertion: the chain is consistent again…
        const rows = (await sql('SELECT * FROM audit_events WHERE seq > ? ORDER BY seq', [n + 1])) as Record<
          string,
          unknown
        >[];
        let p = forged;
        for (const r of rows) {
          const h = chainHash(p, Number(r.seq), auditRowValues(r as unknown as AuditRow));
          await sql('UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?', [p, h, r.seq]);
          p = h;
        }
        // …but the signed checkpoint pinned the old head.
        assert.deepEqual((await verify(t)).firstBad, { seq: Number(head!.seq), problem: 'checkpoint_mismatch' });
      });
    });

    test('retention: pruning old events leaves a signed anchor and an audit.pruned event; the rest verifies', async () => {
      await withHistory(backend, async (t, sql) => {
        await new Promise((r) => setTimeout(r, 30));
        const cutoff = new Date().toISOString();
        await new Promise((r) => setTimeout(r, 30));
        const c = await t.register({ audiences: [AUD] });
        for (let i = 0; i < 3; i++)
          await t.post(
            '/token',
            { grant_type: 'client_credentials' },
            { authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}` },
          );
        const [old] = await sql('SELECT COUNT(*) AS n, MAX(seq) AS seq FROM audit_events WHERE time < ?', [cutoff]);
        const res = await admin(t, `/admin/audit/prune?before=${cutoff}`, 'POST');
        assert.equal(res.status, 200);
        assert.deepEqual(res.body, { pruned: Number(old!.n), through_seq: Number(old!.seq) });
        const [left] = await sql('SELECT MIN(seq) AS seq FROM audit_events');
        assert.equal(Number(left!.seq), Number(old!.seq) + 1);
        const r = await verify(t);
        assert.equal(r.ok, true, JSON.stringify(r));
        assert.equal(r.prunedThrough, Number(old!.seq));
        const pruned = (await admin(t, '/admin/audit?type=audit.pruned')).body.events;
        assert.equal(pruned.length, 1);
        assert.equal(pruned[0].detail.through_seq, Number(old!.seq));
        // Deleting more from the start, without a prune of its own, is named.
        await sql('DELETE FROM audit_events WHERE seq <= ?', [Number(old!.seq) + 2]);
        assert.deepEqual((await verify(t)).firstBad, { seq: Number(old!.seq) + 2, problem: 'missing' });
      });
    });

    test('deleting the oldest events is named; a prune with a bad time is refused', async () => {
      await withHistory(backend, async (t, sql) => {
        await sql('DELETE FROM audit_events WHERE seq <= 3');
        assert.deepEqual((await verify(t)).firstBad, { seq: 3, problem: 'missing' });
        for (const q of ['', '?before=yesterday', '?before=2999-01-01T00:00:00Z'])
          assert.equal((await admin(t, `/admin/audit/prune${q}`, 'POST')).status, 400, q);
      });
    });
  });
}

test('scheduled retention (LATCHKEY_AUDIT_RETENTION) prunes what is older than the retention', async () => {
  const clock = new FakeClock();
  const t = await startTestIdp({ config: { auditRetention: 60 }, clock });
  try {
    const c = await t.register({ audiences: [AUD] });
    await t.post(
      '/token',
      { grant_type: 'client_credentials' },
      { authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}` },
    );
    const before = (await t.idp.storage.queryAuditEvents({ limit: 1000 })).length;
    clock.advanceSeconds(61);
    const r = await t.idp.retention.prune();
    assert.equal(r.pruned, before);
    const rest = await t.idp.storage.queryAuditEvents({ limit: 1000 });
    assert.deepEqual(
      rest.map((e) => e.type),
      ['audit.pruned'],
    );
    const v = (await admin(t, '/admin/audit/verify')).body;
    assert.equal(v.ok, true, JSON.stringify(v));
  } finally {
    await t.close();
  }
});

test('admin audit query: filters, cursor pages, bad input', async () => {
  const t = await startTestIdp();
  try {
    const c = await t.register({ client_id: 'queried', audiences: [AUD] });
    const auth = `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`;
    for (let i = 0; i < 5; i++) await t.post('/token', { grant_type: 'client_credentials' }, { authorization: auth });
    await t.post(
      '/token',
      { grant_type: 'client_credentials' },
      { authorization: `Basic ${Buffer.from('queried:wrong').toString('base64')}` },
    );
    const issued = (await admin(t, '/admin/audit?type=token.issued&client_id=queried')).body;
    assert.equal(issued.events.length, 5);
    assert.ok(issued.events.every((e: any) => e.type === 'token.issued' && typeof e.hash === 'string'));
    const failed = (await admin(t, '/admin/audit?outcome=failure&client_id=queried')).body;
    assert.equal(failed.events.length, 1);
    assert.equal(failed.events[0].type, 'client.auth_failed');
    const seen: number[] = [];
    let after = '0';
    for (;;) {
      const page = (await admin(t, `/admin/audit?actor=queried&limit=2&after=${after}`)).body;
      seen.push(...page.events.map((e: any) => e.seq));
      after = page.cursor;
      if (!page.has_more) break;
    }
    assert.equal(seen.length, 5);
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => a - b),
    );
    const future = (await admin(t, '/admin/audit?from=2999-01-01T00:00:00Z')).body;
    assert.equal(future.events.length, 0);
    for (const q of ['limit=0', 'limit=5000', 'after=-1', 'from=yesterday', 'type=a&type=b']) {
      const r = await admin(t, `/admin/audit?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.error, 'validation_failed', q);
    }
    assert.equal((await t.fetch(`${t.issuer}/admin/audit`)).status, 401);
  } finally {
    await t.close();
  }
});
