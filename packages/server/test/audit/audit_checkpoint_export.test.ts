// Issue 11, finding 12: tamper evidence leaves the database. Checkpoints go to a file as they are
// made; `verify` checks the chain against that file, online or offline (a database file, an export).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { basicAuth, CLI_MAIN, startTestIdp, TSX, type TestIdp } from '@latchkey/testkit';
import { loadConfig, verifyAuditOffline } from '@latchkey/server';
import { chainHash } from '../../src/storage/audit_chain.ts';
import { type AuditRow, auditRowValues } from '../../src/storage/rows.ts';

const run = promisify(execFile);

describe('checkpoints leave the database and verify checks against them', () => {
  let t: TestIdp;
  let dir: string;
  let cpFile: string;
  let jwksFile: string;
  let exportFile: string;
  const admin = async (path: string, init: RequestInit = {}) =>
    (
      await t.fetch(`${t.issuer}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${t.adminToken}`, ...(init.headers as Record<string, string> | undefined) },
      })
    ).json() as Promise<any>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-cp-'));
    cpFile = join(dir, 'checkpoints.jsonl');
    jwksFile = join(dir, 'jwks.json');
    exportFile = join(dir, 'export.jsonl');
    t = await startTestIdp({ config: { auditCheckpointFile: cpFile } });
    const c = await t.register({ audiences: ['https://orders.internal'] });
    for (let i = 0; i < 5; i++)
      await t.post(
        '/token',
        { grant_type: 'client_credentials' },
        { authorization: basicAuth(c.client_id, c.client_secret) },
      );
  });
  after(() => t.close());

  test('a checkpoint is in the file as soon as it is made; the file must be outside the data folder', async () => {
    const { seq } = await admin('/admin/audit/checkpoints', { method: 'POST' });
    const lines = readFileSync(cpFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.at(-1).seq, seq);
    assert.match(lines.at(-1).signature, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.throws(
      () =>
        loadConfig({
          dataDir: dir,
          auditCheckpointFile: join(dir, 'inside', 'cp.jsonl'),
          tls: 'off',
          issuer: 'http://127.0.0.1:1',
        }),
      /LATCHKEY_AUDIT_CHECKPOINT_FILE: must be outside the data folder/,
    );
  });

  test('an insider who rewrites the chain and deletes the checkpoint table fools the database alone, not the exported checkpoints — online, offline and from the CLI', async () => {
    writeFileSync(jwksFile, await (await t.fetch(`${t.issuer}/jwks`)).text());
    // A clean export taken before the tampering verifies offline against the file.
    const events = (await admin('/admin/audit?limit=1000')).events as unknown[];
    writeFileSync(exportFile, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const fromExport = await verifyAuditOffline({ exportFile, checkpointsFile: cpFile, jwksFile });
    assert.equal(fromExport.ok, true, JSON.stringify(fromExport));
    assert.equal(fromExport.external!.verified, fromExport.external!.total);

    const db = new Database(join(t.dataDir, 'latchkey.db'));
    try {
      const first = db.prepare('SELECT MIN(seq) AS s FROM audit_events WHERE hash IS NOT NULL').get() as { s: number };
      db.prepare('UPDATE audit_events SET actor = ? WHERE seq = ?').run('mallory', first.s + 1);
      let p = (db.prepare('SELECT hash FROM audit_events WHERE seq = ?').get(first.s) as { hash: string }).hash;
      for (const r of db.prepare('SELECT * FROM audit_events WHERE seq > ? ORDER BY seq').all(first.s) as Record<
        string,
        unknown
      >[]) {
        const h = chainHash(p, Number(r.seq), auditRowValues(r as unknown as AuditRow));
        db.prepare('UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?').run(p, h, r.seq);
        p = h;
      }
      db.exec('DELETE FROM audit_checkpoints');
    } finally {
      db.close();
    }
    // The database alone now says intact: that is the gap the exported file closes.
    assert.equal((await admin('/admin/audit/verify')).ok, true);
    const checkpointed = JSON.parse(readFileSync(cpFile, 'utf8').trim().split('\n').at(-1)!).seq as number;
    const online = await admin('/admin/audit/verify', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        checkpoints: readFileSync(cpFile, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l)),
      }),
    });
    assert.deepEqual([online.ok, online.firstBad], [false, { seq: checkpointed, problem: 'checkpoint_mismatch' }]);
    const offline = await verifyAuditOffline({
      database: join(t.dataDir, 'latchkey.db'),
      checkpointsFile: cpFile,
      jwksFile,
    });
    assert.deepEqual(
      [offline.ok, offline.firstBad, offline.keysFrom],
      [false, { seq: checkpointed, problem: 'checkpoint_mismatch' }, 'jwks'],
    );
    const cli = await run(TSX, [
      CLI_MAIN,
      'audit',
      'verify',
      '--database',
      join(t.dataDir, 'latchkey.db'),
      '--checkpoints',
      cpFile,
      '--jwks',
      jwksFile,
    ]).then(
      () => ({ code: 0, stdout: '' }),
      (err: { code: number; stdout: string }) => err,
    );
    assert.equal(cli.code, 1);
    assert.match(cli.stdout, new RegExp(`^BROKEN at seq ${checkpointed}: checkpoint_mismatch`));
  });
});
