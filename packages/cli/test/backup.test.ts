import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { LatchkeyError } from '@latchkey/server';
import {
  basicAuth,
  CLI_MAIN,
  startPostgresIfConfigured,
  startTestIdp,
  testDatabaseUrl,
  TSX,
  type TestIdp,
} from '@latchkey/testkit';

const run = promisify(execFile);
type Run = { stdout: string; stderr: string; code?: number };

/** What a restore must give back: the same clients, signing keys, policy, and a chain that verifies. */
async function estate(
  t: TestIdp,
): Promise<{ clients: string[]; kids: string[]; policy: number; chainOk: boolean; events: number }> {
  const clients = (
    (await (await t.admin('/admin/clients', undefined, 'GET')).json()) as { clients: { client_id: string }[] }
  ).clients
    .map((c) => c.client_id)
    .sort();
  const kids = ((await (await t.fetch(`${t.issuer}/jwks`)).json()) as { keys: { kid: string }[] }).keys
    .map((k) => k.kid)
    .sort();
  const policy = ((await (await t.admin('/admin/policy', undefined, 'GET')).json()) as { version: number }).version;
  const chain = (await (await t.admin('/admin/audit/verify', undefined, 'GET')).json()) as {
    ok: boolean;
    checked: number;
  };
  return { clients, kids, policy, chainOk: chain.ok, events: chain.checked };
}

type Estate = Awaited<ReturnType<typeof estate>>;

/** What a restore must give back: the same clients, keys and policy version, and a chain that verifies. */
function assertSameEstate(after: Estate, before: Estate): void {
  assert.deepEqual(after.clients, before.clients);
  assert.deepEqual(after.kids, before.kids);
  assert.equal(after.policy, before.policy);
  assert.equal(after.chainOk, true);
}

/** Some of everything: clients, a rotated key, a policy version, tokens (audit events); returns a client and its secret. */
async function populate(t: TestIdp): Promise<Record<string, string>> {
  const c = await t.register({ client_id: 'orders', audiences: ['https://inventory.internal'] });
  await t.register({ client_id: 'billing', audiences: ['https://ledger.internal'] });
  const published = await t.admin('/admin/policy', {
    schema: { 'a.cedarschema': 'entity Role;' },
    policies: { p: 'permit(principal, action, resource);' },
    entities: [],
  });
  assert.equal(published.status, 201, await published.text());
  assert.equal((await t.admin('/admin/keys/rotate', {})).status, 200);
  for (let i = 0; i < 3; i++)
    assert.equal(
      (await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth(c) })).status,
      200,
    );
  return c as Record<string, string>;
}

describe('latchkey backup and restore (SQLite)', () => {
  let root: string;
  let t: TestIdp;
  let orders: Record<string, string>;
  const dirA = () => join(root, 'a');
  const cli = (args: string[], env: Record<string, string> = {}): Promise<Run> =>
    run(TSX, [CLI_MAIN, ...args], { env: { ...process.env, LATCHKEY_DATABASE_URL: '', ...env } }).catch((e: Run) => e);

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'latchkey-backup-'));
    mkdirSync(dirA());
    t = await startTestIdp({ dataDir: dirA() });
    orders = await populate(t);
  });
  after(async () => {
    await t?.close().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  test('a backup taken while the IdP runs restores the same clients, keys, policy and a verified audit chain', async () => {
    const before = await estate(t);
    const file = join(root, 'latchkey-backup.db');
    const backed = await cli(['backup', file, '--data-dir', dirA()]);
    assert.equal(backed.code, undefined, backed.stderr);
    assert.match(backed.stdout, /backed up .* keep the master key apart from it/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(!readdirSync(root).some((f) => f.includes('master')), 'the master key is not in the backup');
    // Never over an existing file; never onto a database an IdP has open.
    assert.match((await cli(['backup', file, '--data-dir', dirA()])).stderr, /exists: give a new file/);
    const busy = await cli(['restore', file, '--data-dir', dirA(), '--force']);
    assert.equal(busy.code, 2);
    assert.match(busy.stderr, /is open \(an IdP runs on it/);

    // Another data folder with the same master key: the same estate.
    const dirB = join(root, 'b');
    mkdirSync(dirB);
    copyFileSync(join(dirA(), 'master.key'), join(dirB, 'master.key'));
    const restored = await cli(['restore', file, '--data-dir', dirB]);
    assert.equal(restored.code, undefined, restored.stderr);
    assert.match(restored.stdout, /restored .*: 2 clients, \d+ signing keys, policy version 1, audit chain verified/);
    const b = await startTestIdp({ dataDir: dirB, adminToken: t.adminToken });
    try {
      const after = await estate(b);
      assertSameEstate(after, before);
      assert.ok(after.events >= before.events);
      // The restored client's secret works at the restored IdP, whose token is signed by a restored key.
      const issued = await b.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth(orders) });
      assert.equal(issued.status, 200);
      const header = JSON.parse(
        Buffer.from(String(issued.body.access_token).split('.')[0] as string, 'base64url').toString(),
      );
      assert.ok(before.kids.includes(header.kid));
    } finally {
      await b.close();
    }
    // Not again over it without --force.
    assert.match((await cli(['restore', file, '--data-dir', dirB])).stderr, /exists: restore with --force/);
  });

  test('the IdP refuses to start on a restored database with another master key, and says why', async () => {
    const file = join(root, 'for-c.db');
    assert.equal((await cli(['backup', file, '--data-dir', dirA()])).code, undefined);
    const dirC = join(root, 'c');
    mkdirSync(dirC);
    assert.equal((await cli(['restore', file, '--data-dir', dirC])).code, undefined);
    // No master.key in C: a new one is made at start — not the one the database was sealed with.
    await assert.rejects(startTestIdp({ dataDir: dirC }), (err: unknown) => {
      assert.ok(err instanceof LatchkeyError);
      assert.equal(err.code, 'master_key_invalid');
      assert.match(err.message, /sealed with another master key: start the IdP with the master key it was made with/);
      return true;
    });
  });

  test('a backup that is not a Latchkey database, or whose audit chain was tampered with, is not restored', async () => {
    const junk = join(root, 'junk.db');
    writeFileSync(junk, 'not a database at all');
    const r1 = await cli(['restore', junk, '--data-dir', join(root, 'd')]);
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /is not a Latchkey database/);

    const file = join(root, 'tampered.db');
    assert.equal((await cli(['backup', file, '--data-dir', dirA()])).code, undefined);
    const db = new Database(file);
    db.prepare(
      "UPDATE audit_events SET actor = 'someone-else' WHERE seq = (SELECT MIN(seq) FROM audit_events WHERE hash IS NOT NULL)",
    ).run();
    db.close();
    const r2 = await cli(['restore', file, '--data-dir', join(root, 'e')]);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /audit chain does not verify .*; not restored/);
    assert.ok(!existsSync(join(root, 'e', 'latchkey.db')));
  });

  test('with PostgreSQL configured, the commands point at pg_dump', async () => {
    const r = await cli(['backup', join(root, 'x.db')], { LATCHKEY_DATABASE_URL: 'postgres://127.0.0.1:1/none' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /pg_dump and pg_restore/);
  });
});

describe('backup and restore (PostgreSQL, the documented pg_dump procedure)', {
  skip: testDatabaseUrl() === undefined && 'LATCHKEY_TEST_DATABASE_URL is not set (CI sets it)',
}, () => {
  test('pg_dump -Fc, pg_restore into a new database: the same estate, a verified chain; another master key refused', async () => {
    const bin = readdirSync('/usr/lib/postgresql')
      .sort()
      .map((v) => `/usr/lib/postgresql/${v}/bin`)
      .at(-1) as string;
    const root = mkdtempSync(join(tmpdir(), 'latchkey-pgdump-'));
    const masterKey = Buffer.alloc(32, 7).toString('base64');
    try {
      const source = (await startPostgresIfConfigured()) as string;
      const t = await startTestIdp({ databaseUrl: source, config: { masterKey } });
      let before: Awaited<ReturnType<typeof estate>>;
      try {
        await populate(t);
        before = await estate(t);
        // docs/operations.md: the dump is taken while the IdP runs (one consistent snapshot).
        await run(`${bin}/pg_dump`, ['--format=custom', '--no-owner', `--file=${join(root, 'latchkey.dump')}`, source]);
      } finally {
        await t.close();
      }
      const target = (await startPostgresIfConfigured()) as string;
      await run(`${bin}/pg_restore`, [
        '--no-owner',
        '--exit-on-error',
        `--dbname=${target}`,
        join(root, 'latchkey.dump'),
      ]);
      const b = await startTestIdp({ databaseUrl: target, config: { masterKey }, adminToken: t.adminToken });
      try {
        const after = await estate(b);
        assertSameEstate(after, before);
      } finally {
        await b.close();
      }
      await assert.rejects(
        startTestIdp({ databaseUrl: target, config: { masterKey: Buffer.alloc(32, 9).toString('base64') } }),
        (err: unknown) => err instanceof LatchkeyError && err.code === 'master_key_invalid',
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
