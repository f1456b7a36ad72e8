import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type AuditEvent, systemClock } from '@latchkey/protocol';
import { DetectionRunner } from '../../src/audit/detection_runner.ts';
import type { Detector } from '../../src/audit/detectors/types.ts';
import type { AuditFilter, AuditRecord } from '../../src/storage/ports.ts';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite_storage.ts';

const event = (actor: string, n: number): AuditEvent => ({
  time: new Date().toISOString(),
  type: 'token.issued',
  outcome: 'success',
  actor,
  client_id: actor,
  request_id: `${actor}-${n}`,
  detail: { grant_type: 'client_credentials', auth_method: 'client_secret_basic', jti: `j${n}`, aud: ['a'], exp: n },
});

/** Two storages on one SQLite file are two replicas: two connections appending to one chain. */
describe('detection runner: rows appended here arrive in memory, other replicas’ rows from the log', () => {
  let dir: string;
  let here: SqliteStorage;
  let there: SqliteStorage;
  const seen: AuditRecord[] = [];
  const recorder: Detector = {
    name: 'issuance_spike',
    observe: (e) => {
      seen.push(e);
      return [];
    },
  };
  let readFromLog = 0;
  let runner: DetectionRunner;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-detect-'));
    here = new SqliteStorage(join(dir, 'latchkey.db'));
    there = new SqliteStorage(join(dir, 'latchkey.db'));
    await here.migrate();
    await there.migrate();
    const query = here.queryAuditEvents.bind(here);
    const store = Object.assign(Object.create(here) as SqliteStorage, {
      queryAuditEvents: async (f: AuditFilter) => {
        const rows = await query(f);
        readFromLog += rows.length;
        return rows;
      },
    });
    runner = new DetectionRunner({
      clock: systemClock,
      store,
      detectors: [recorder],
      raiser: { raise: async () => undefined },
      interval: 3600,
      onError: (err) => assert.fail(err as Error),
    });
    here.onAuditAppended(runner.appended);
    await there.appendAuditEvents([event('before', 0)]); // history before the runner: not replayed
    await runner.pass(); // takes the lease, starts at the head
  });

  after(async () => {
    await runner.stop();
    await here.close();
    await there.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('every row once, in seq order, as stored; only the other replica’s rows are read back', async () => {
    await here.appendAuditEvents([event('here', 1), event('here', 2), event('here', 3)]);
    await there.appendAuditEvents([event('there', 4), event('there', 5)]);
    await here.appendAuditEvents([event('here', 6)]);
    await there.appendAuditEvents([event('there', 7)]);
    await here.appendAuditEvents([event('here', 8), event('here', 9)]);
    await runner.pass();

    assert.deepEqual(
      seen.map((e) => e.request_id),
      ['here-1', 'here-2', 'here-3', 'there-4', 'there-5', 'here-6', 'there-7', 'here-8', 'here-9'],
    );
    assert.deepEqual(
      seen.map((e) => e.seq),
      [2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.equal(readFromLog, 3, 'the other replica’s three rows come from the log, this one’s from memory');
    // What the detectors got from memory is exactly what the log holds.
    assert.deepEqual(seen, await here.queryAuditEvents({ after: 1, limit: 100 }));
  });

  test('a late or repeated announcement is not observed twice; rows appended after the pass wait for the next', async () => {
    const before = seen.length;
    const old = await here.queryAuditEvents({ after: 2, limit: 2 });
    runner.appended(old);
    await runner.pass();
    assert.equal(seen.length, before);

    await there.appendAuditEvents([event('there', 10)]);
    await runner.pass();
    await here.appendAuditEvents([event('here', 11)]);
    await runner.pass();
    assert.deepEqual(
      seen.slice(before).map((e) => [e.seq, e.request_id]),
      [
        [11, 'there-10'],
        [12, 'here-11'],
      ],
    );
  });

  test('a replica without the lease keeps nothing in memory and observes nothing', async () => {
    const other: AuditRecord[] = [];
    const follower = new DetectionRunner({
      clock: systemClock,
      store: there,
      detectors: [{ name: 'issuance_spike', observe: (e) => (other.push(e), []) }],
      raiser: { raise: async () => undefined },
      interval: 3600,
      onError: (err) => assert.fail(err as Error),
    });
    there.onAuditAppended(follower.appended);
    await follower.pass();
    await there.appendAuditEvents([event('there', 12)]);
    await follower.pass();
    await follower.stop();
    assert.deepEqual(other, []);
    await runner.pass();
    assert.equal(seen.at(-1)?.request_id, 'there-12');
  });
});
