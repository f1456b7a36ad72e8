import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { PostgresStorage } from '@latchkey/server';
import { startPostgresIfConfigured, testDatabaseUrl } from '@latchkey/testkit';
import { PostgresDriver } from '../../src/storage/postgres/postgres_driver.ts';

// What a PostgreSQL restart does to a replica's connections, one at a time: the server ends a
// backend (pg_terminate_backend is what a fast shutdown does to each) while the IdP holds it.
describe('PostgreSQL connections lost under a running replica', {
  skip: testDatabaseUrl() === undefined ? 'LATCHKEY_TEST_DATABASE_URL is not set (CI sets it)' : false,
}, () => {
  let url: string;
  let admin: pg.Client;
  before(async () => {
    url = (await startPostgresIfConfigured()) as string;
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
  });
  after(async () => {
    await admin.end();
  });

  const terminate = (pid: number) => admin.query('SELECT pg_terminate_backend($1)', [pid]);

  test('a connection ended between two statements of a transaction fails that transaction, and nothing crashes', async () => {
    const driver = new PostgresDriver(url, { max: 2 });
    try {
      let uncaught: unknown;
      const onUncaught = (err: unknown) => (uncaught = err);
      process.on('uncaughtException', onUncaught);
      try {
        const failed = await driver
          .transaction(async (tx) => {
            const { pid } = (await tx.get<{ pid: number }>('SELECT pg_backend_pid() AS pid'))!;
            await terminate(pid);
            // The server is gone while the transaction waits here (pg emits 'error' on its client).
            await new Promise((r) => setTimeout(r, 200));
            await tx.get('SELECT 1 AS one');
          })
          .then(
            () => undefined,
            (err: { code?: string }) => err,
          );
        assert.equal(failed?.code, 'storage_unavailable');
        assert.equal(uncaught, undefined, `an uncaught error: ${uncaught}`);
      } finally {
        process.off('uncaughtException', onUncaught);
      }
      // The lost connection was discarded: the pool serves the next statements on new ones.
      for (let i = 0; i < 4; i++) assert.deepEqual(await driver.get('SELECT 1 AS one'), { one: 1 });
    } finally {
      await driver.close();
    }
  });

  test('a lost notification connection shows in readiness and is re-established; listeners then catch up', async () => {
    const storage = new PostgresStorage(url);
    try {
      let heard = 0;
      storage.onFeedAppended(() => heard++);
      const deadline = Date.now() + 5000;
      const listener = async () =>
        (
          await admin.query<{ pid: number }>(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
          )
        ).rows[0]?.pid;
      let pid: number | undefined;
      while ((pid = await listener()) === undefined && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      assert.ok(pid, 'the LISTEN connection is up');
      assert.equal(storage.feedNotificationsConnected(), true);
      const before = heard;
      await terminate(pid);
      while (storage.feedNotificationsConnected() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(storage.feedNotificationsConnected(), false, 'readiness sees the lost connection');
      while (!storage.feedNotificationsConnected() && Date.now() < deadline + 5000)
        await new Promise((r) => setTimeout(r, 50));
      assert.equal(storage.feedNotificationsConnected(), true, 'reconnected within a few seconds');
      // On reconnecting, every listener is told to catch up (entries may have been missed meanwhile).
      assert.ok(heard > before);
      assert.notEqual(await listener(), pid);
    } finally {
      await storage.close();
    }
  });
});
