import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PostgresStorage, SqliteStorage, type Storage } from '@latchkey/server';
import { FakeClock, startPostgresIfConfigured, testDatabaseUrl } from '@latchkey/testkit';
import { DEFAULT_LOCKOUT, type LoginAttempt, LoginLockout } from '../../src/users/login_lockout.ts';

const attempt = (over: Partial<LoginAttempt> = {}): LoginAttempt => ({
  sub: 'u-alice',
  usernameKey: 'alice',
  sourceIp: '127.0.0.10',
  knownDevice: false,
  ...over,
});

function lockoutTests(name: string, open: () => Promise<{ a: Storage; b: Storage; close: () => Promise<void> }>) {
  describe(`login lockout on ${name}`, () => {
    let env: Awaited<ReturnType<typeof open>>;
    let clock: FakeClock;
    let lockout: LoginLockout;
    before(async () => {
      env = await open();
    });
    after(() => env.close());
    const fresh = () => {
      clock = new FakeClock(Date.UTC(2026, 11, 2));
      lockout = new LoginLockout(env.a, clock);
    };

    test('one user from one source: five free failures, then waits that double (1, 2, 4 … s) up to the cap', async () => {
      fresh();
      const me = attempt({ sourceIp: '127.0.0.11' });
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(await lockout.check(me), { locked: false }, `attempt ${i + 1} may be tried`);
        await lockout.failed(me);
      }
      assert.deepEqual(await lockout.check(me), { locked: true, scope: 'user_source', retryAfter: 1 });
      clock.advanceSeconds(1);
      assert.deepEqual(await lockout.check(me), { locked: false });
      await lockout.failed(me); // the 6th
      assert.deepEqual(await lockout.check(me), { locked: true, scope: 'user_source', retryAfter: 2 });
      clock.advanceSeconds(2);
      await lockout.failed(me); // the 7th
      assert.equal(((await lockout.check(me)) as { retryAfter: number }).retryAfter, 4);
      // The same user from another address is not held back by this pair (nor, at 7, by the account).
      assert.deepEqual(await lockout.check(attempt({ sourceIp: '127.0.0.12' })), { locked: false });
      for (let i = 0; i < 40; i++) await lockout.failed(me);
      assert.equal(
        ((await lockout.check(me)) as { retryAfter: number }).retryAfter,
        DEFAULT_LOCKOUT.maxDelaySeconds,
        'no lock lasts longer than the cap',
      );
      clock.advanceSeconds(DEFAULT_LOCKOUT.maxDelaySeconds);
      assert.deepEqual(await lockout.check(me), { locked: false }, 'the cap ends it');
    });

    test('one user from everywhere: past the account threshold unknown devices wait; a device that logged in before never does', async () => {
      fresh();
      for (let i = 0; i < DEFAULT_LOCKOUT.accountFailures; i++)
        await lockout.failed(attempt({ sub: 'u-bob', usernameKey: 'bob', sourceIp: `127.0.1.${i + 1}` }));
      const newDevice = attempt({ sub: 'u-bob', usernameKey: 'bob', sourceIp: '127.0.2.1' });
      assert.deepEqual(await lockout.check(newDevice), { locked: true, scope: 'account', retryAfter: 1 });
      assert.deepEqual(
        await lockout.check({ ...newDevice, knownDevice: true }),
        { locked: false },
        'the attacker cannot lock Bob out of his own browser',
      );
      assert.deepEqual(
        await lockout.check(attempt({ sub: 'u-zed', usernameKey: 'zed', sourceIp: '127.0.2.1' })),
        { locked: false },
        'nor anyone else',
      );
    });

    test('one source across users (spraying): past its threshold that source waits, for names that exist or not', async () => {
      fresh();
      const sprayer = '127.0.3.1';
      for (let i = 0; i < DEFAULT_LOCKOUT.sourceFailures; i++)
        await lockout.failed(attempt({ sub: undefined, usernameKey: `user${i}`, sourceIp: sprayer }));
      assert.deepEqual(await lockout.check(attempt({ sub: 'u-carol', usernameKey: 'carol', sourceIp: sprayer })), {
        locked: true,
        scope: 'source',
        retryAfter: 1,
      });
      assert.deepEqual(await lockout.check(attempt({ sub: 'u-carol', usernameKey: 'carol', sourceIp: '127.0.3.2' })), {
        locked: false,
      });
    });

    test('names no user has are counted alike (lockout does not tell which names exist)', async () => {
      fresh();
      const ghost = attempt({ sub: undefined, usernameKey: 'ghost', sourceIp: '127.0.4.1' });
      for (let i = 0; i < 5; i++) await lockout.failed(ghost);
      assert.deepEqual(await lockout.check(ghost), { locked: true, scope: 'user_source', retryAfter: 1 });
    });

    test('a success forgets its own pair only; an unlock forgets the user everywhere; old failures are forgotten', async () => {
      fresh();
      const dave = (ip: string) => attempt({ sub: 'u-dave', usernameKey: 'dave', sourceIp: ip });
      for (let i = 0; i < 5; i++) await lockout.failed(dave('127.0.5.1'));
      for (let i = 0; i < 5; i++) await lockout.failed(dave('127.0.5.2'));
      await lockout.succeeded(dave('127.0.5.1'));
      assert.deepEqual(await lockout.check(dave('127.0.5.1')), { locked: false });
      assert.equal((await lockout.check(dave('127.0.5.2'))).locked, true, 'the other source still waits');
      await lockout.unlock('u-dave');
      assert.deepEqual(await lockout.check(dave('127.0.5.2')), { locked: false });
      for (let i = 0; i < 5; i++) await lockout.failed(dave('127.0.5.3'));
      clock.advanceSeconds(DEFAULT_LOCKOUT.windowSeconds);
      await lockout.failed(dave('127.0.5.3'));
      assert.deepEqual(await lockout.check(dave('127.0.5.3')), { locked: false }, 'a new window starts at 1');
    });

    test('two replicas (two connections) failing at once: every failure counts, at either replica', async () => {
      fresh();
      const other = new LoginLockout(env.b, clock);
      const erin = attempt({ sub: 'u-erin', usernameKey: 'erin', sourceIp: '127.0.6.1' });
      await Promise.all([
        ...Array.from({ length: 3 }, () => lockout.failed(erin)),
        ...Array.from({ length: 2 }, () => other.failed(erin)),
      ]);
      assert.equal((await other.check(erin)).locked, true, 'five failures, seen by the other replica');
      assert.equal((await env.b.loginFailures(['user:u-erin 127.0.6.1'])).get('user:u-erin 127.0.6.1')?.failures, 5);
    });
  });
}

lockoutTests('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-lockout-'));
  const file = join(dir, 'latchkey.db');
  const a = new SqliteStorage(file);
  await a.migrate();
  const b = new SqliteStorage(file);
  return {
    a,
    b,
    close: async () => {
      await a.close();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

if (testDatabaseUrl() !== undefined)
  lockoutTests('PostgreSQL', async () => {
    const url = (await startPostgresIfConfigured()) as string;
    const a = new PostgresStorage(url);
    await a.migrate();
    const b = new PostgresStorage(url);
    return {
      a,
      b,
      close: async () => {
        await a.close();
        await b.close();
      },
    };
  });
