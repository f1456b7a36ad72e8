import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  LatchkeyError,
  PostgresStorage,
  SqliteStorage,
  type ClientRecord,
  type SigningKeyRecord,
  type Storage,
  type TokenStatusRecord,
  type UserRecord,
} from '@latchkey/server';
import { startPostgresIfConfigured, testDatabaseUrl, auditEvents } from '@latchkey/testkit';

const client = (id: string, over: Partial<ClientRecord> = {}): ClientRecord => ({
  clientId: id,
  metadata: {
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_basic',
    audiences: ['https://a.example'],
    scope: 'x y',
  },
  secretHash: 'hash-of-secret',
  registrationTokenHash: 'hash-of-rat',
  createdAt: 1_700_000_000,
  updatedAt: 1_700_000_000,
  disabled: false,
  lockedUntil: null,
  ...over,
});

const user = (sub: string, username: string, over: Partial<UserRecord> = {}): UserRecord => ({
  sub,
  username,
  usernameKey: username.toLowerCase(),
  email: `${username.toLowerCase()}@example.com`,
  name: null,
  passwordHash: '$scrypt$ln=17,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g',
  passwordChangedAt: 1_700_000_000,
  mustChangePassword: false,
  roles: ['reader'],
  groups: ['eu'],
  attributes: { tenant: 'acme', level: 3, tags: ['a'] },
  disabled: false,
  createdAt: 1_700_000_000,
  updatedAt: 1_700_000_000,
  mfaRequired: false,
  totpSecret: null,
  totpLastStep: null,
  ...over,
});

const key = (kid: string, state: SigningKeyRecord['state'], createdAt = 1_700_000_000): SigningKeyRecord => ({
  kid,
  alg: 'ES256',
  state,
  publicJwk: { kty: 'EC', kid },
  privateKeyEnc: 'v1.x.y',
  createdAt,
  activatedAt: state === 'current' ? createdAt : null,
  retiredAt: null,
  removeAfter: null,
});

/** The one storage contract; every adapter must pass all of it. */
function contract(
  name: string,
  open: () => Promise<{ storage: Storage; reopen: () => Promise<Storage>; cleanup: () => Promise<void> }>,
): void {
  describe(`storage contract: ${name}`, () => {
    let s: Storage;
    let env: Awaited<ReturnType<typeof open>>;
    before(async () => {
      env = await open();
      s = env.storage;
    });
    after(async () => {
      await s.close();
      await env.cleanup();
    });

    test('migrations are idempotent and concurrent-safe; ping works', async () => {
      const other = await env.reopen();
      await Promise.all([s.migrate(), other.migrate()]);
      await other.close();
      await s.ping();
    });

    test('clients: create, get, update, list, delete; duplicate id → storage_conflict', async () => {
      await s.createClient(client('c1'));
      await assert.rejects(
        s.createClient(client('c1')),
        (e: unknown) => e instanceof LatchkeyError && e.code === 'storage_conflict',
      );
      assert.deepEqual(await s.getClient('c1'), client('c1'));
      assert.equal(await s.getClient('nope'), undefined);
      const changed = client('c1', {
        metadata: { ...client('c1').metadata, client_name: 'renamed' },
        secretHash: null,
        disabled: true,
        updatedAt: 1_700_000_100,
      });
      assert.equal(await s.updateClient(changed), true);
      assert.deepEqual(await s.getClient('c1'), changed);
      assert.equal(await s.updateClient(client('ghost')), false);
      await s.createClient(client('c2', { createdAt: 1_700_000_001 }));
      assert.deepEqual(
        (await s.listClients()).map((c) => c.clientId),
        ['c1', 'c2'],
      );
      assert.equal(await s.deleteClient('c1'), true);
      assert.equal(await s.deleteClient('c1'), false);
      assert.equal(await s.getClient('c1'), undefined);
    });

    test('keys: one current at most; revoked keys are not published; newest first', async () => {
      await s.insertKey(key('k1', 'current', 1));
      await assert.rejects(
        s.insertKey(key('k2', 'current', 2)),
        (e: unknown) => e instanceof LatchkeyError && e.code === 'storage_conflict',
      );
      await s.insertKey(key('k3', 'next', 3));
      await s.insertKey(key('k4', 'revoked', 4));
      await s.insertKey(key('k5', 'retired', 0));
      assert.deepEqual(
        (await s.listPublishedKeys()).map((k) => k.kid),
        ['k3', 'k1', 'k5'],
      );
      assert.deepEqual(await s.getCurrentKey(), key('k1', 'current', 1));
    });

    test('keys: transitions are atomic and conditional; one next at most; expired keys are removed', async () => {
      await assert.rejects(
        s.insertKey(key('k6', 'next', 6)),
        (e: unknown) => e instanceof LatchkeyError && e.code === 'storage_conflict',
      );
      // Promote k3 (next) and retire k1 (current) together.
      assert.equal(
        await s.transitionKeys([
          { kid: 'k1', from: 'current', to: 'retired', at: 10, removeAfter: 100 },
          { kid: 'k3', from: 'next', to: 'current', at: 10 },
        ]),
        true,
      );
      const byKid = new Map((await s.listKeys()).map((k) => [k.kid, k]));
      assert.equal(byKid.get('k1')!.state, 'retired');
      assert.equal(byKid.get('k1')!.retiredAt, 10);
      assert.equal(byKid.get('k1')!.removeAfter, 100);
      assert.equal(byKid.get('k3')!.state, 'current');
      assert.equal(byKid.get('k3')!.activatedAt, 10);
      // A stale transition (k1 is no longer current) changes nothing, not even its valid half.
      assert.equal(
        await s.transitionKeys([
          { kid: 'k5', from: 'retired', to: 'revoked', at: 11, removeAfter: 50 },
          { kid: 'k1', from: 'current', to: 'retired', at: 11 },
        ]),
        false,
      );
      assert.equal((await s.listKeys()).find((k) => k.kid === 'k5')!.state, 'retired');
      // A second current is refused atomically.
      assert.equal(await s.transitionKeys([{ kid: 'k5', from: 'retired', to: 'current', at: 12 }]), false);
      assert.equal((await s.getCurrentKey())!.kid, 'k3');
      assert.deepEqual(
        (await s.listKeys()).map((k) => k.kid),
        ['k4', 'k3', 'k1', 'k5'],
      );
      assert.equal(
        await s.transitionKeys([{ kid: 'k5', from: 'retired', to: 'revoked', at: 13, removeAfter: 60 }]),
        true,
      );
      assert.deepEqual((await s.removeExpiredKeys(99)).sort(), ['k5']);
      assert.deepEqual((await s.removeExpiredKeys(100)).sort(), ['k1']);
      assert.deepEqual(
        (await s.listKeys()).map((k) => k.kid),
        ['k4', 'k3'],
      );
    });

    test('leases: one holder at a time, renewable, taken over after expiry', async () => {
      const now = Date.now();
      assert.equal(await s.tryLease('rotation', 'a', now + 60_000), true);
      assert.equal(await s.tryLease('rotation', 'b', now + 60_000), false);
      assert.equal(await s.tryLease('rotation', 'a', now + 90_000), true, 'the holder renews');
      assert.equal(await s.tryLease('other', 'b', now + 60_000), true);
      assert.equal(await s.tryLease('short', 'a', now - 1), true);
      assert.equal(await s.tryLease('short', 'b', now + 60_000), true, 'an expired lease is taken over');
      const race = await Promise.all(['x', 'y', 'z', 'w'].map((h) => s.tryLease('race', h, now + 60_000)));
      assert.equal(race.filter(Boolean).length, 1);
    });

    test('replay: an id is usable once until it expires, atomically under concurrency', async () => {
      const now = Math.floor(Date.now() / 1000);
      assert.equal(await s.useOnce('j1', now + 60), true);
      assert.equal(await s.useOnce('j1', now + 60), false);
      const results = await Promise.all(Array.from({ length: 25 }, () => s.useOnce('race', now + 60)));
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal(await s.useOnce('old', now - 10), true);
      assert.equal(await s.useOnce('old', now + 60), true, 'an expired entry may be used again');
      assert.equal(await s.useOnce('old', now + 60), false);
    });

    test('feed log: cursor order, streams, expiry, revocation lookups, append notifications', async () => {
      const now = Math.floor(Date.now() / 1000);
      let heard = 0;
      const off = s.onFeedAppended(() => heard++);
      // PostgreSQL opens its LISTEN connection in the background; give it a moment first.
      await new Promise((r) => setTimeout(r, 300));
      const heardBefore = heard;
      const base = { iss: 'https://i', notBefore: null, createdAt: now, data: null };
      const start = await s.latestFeedSeq();
      const a = await s.appendFeedEvent({
        ...base,
        stream: 'revocations',
        kind: 'token',
        ref: 'a',
        expiresAt: now + 60,
        data: { client_id: 'c' },
      });
      const k = await s.appendFeedEvent({
        ...base,
        stream: 'keys',
        kind: 'key.added',
        ref: 'kid1',
        expiresAt: now + 60,
      });
      const gone = await s.appendFeedEvent({
        ...base,
        stream: 'revocations',
        kind: 'token',
        ref: 'gone',
        expiresAt: now - 1,
      });
      const c1 = await s.appendFeedEvent({
        ...base,
        stream: 'revocations',
        kind: 'client',
        ref: 'c',
        notBefore: now - 10,
        expiresAt: now + 60,
      });
      const c2 = await s.appendFeedEvent({
        ...base,
        stream: 'revocations',
        kind: 'client',
        ref: 'c',
        notBefore: now,
        expiresAt: now + 60,
      });
      assert.ok(start < a.seq && a.seq < k.seq && k.seq < gone.seq && gone.seq < c1.seq && c1.seq < c2.seq);
      assert.equal(await s.latestFeedSeq(), c2.seq);
      assert.deepEqual(
        (await s.listFeedEvents('revocations', start, 100, now)).map((e) => e.ref),
        ['a', 'c', 'c'],
        'expired entries are not served',
      );
      assert.deepEqual(
        (await s.listFeedEvents('all', start, 2, now)).map((e) => e.seq),
        [a.seq, k.seq],
      );
      assert.deepEqual((await s.listFeedEvents('keys', start, 100, now))[0], k);
      assert.deepEqual(
        (await s.listFeedEvents('revocations', a.seq, 100, now)).map((e) => e.seq),
        [c1.seq, c2.seq],
      );
      assert.deepEqual((await s.listFeedEvents('revocations', start, 100, now))[0]!.data, { client_id: 'c' });
      assert.equal(await s.isTokenRevoked('https://i', 'a'), true);
      assert.equal(await s.isTokenRevoked('https://other', 'a'), false);
      assert.equal(await s.isTokenRevoked('https://i', 'kid1'), false, 'key events are not revocations');
      assert.equal(await s.revocationNotBefore('https://i', 'client', 'c'), now);
      assert.equal(await s.revocationNotBefore('https://i', 'subject', 'c'), undefined);
      assert.ok((await s.purgeExpired(now)) >= 1);
      assert.equal(await s.isTokenRevoked('https://i', 'gone'), false);
      // PostgreSQL delivers notifications asynchronously (LISTEN/NOTIFY).
      for (let i = 0; i < 100 && heard - heardBefore < 5; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(heard - heardBefore >= 5, `heard ${heard - heardBefore} notifications for 5 appends`);
      off();
    });

    test('audit: batches append in order and round-trip', async () => {
      const events = Array.from({ length: 300 }, (_, i) => ({
        time: new Date(1_700_000_000_000 + i).toISOString(),
        type: 'token.issued' as const,
        outcome: 'success' as const,
        actor: `c${i}`,
        ...(i % 2
          ? {
              subject: 's',
              client_id: 'c',
              reason: 'r',
              request_id: 'q',
              source_ip: '127.0.0.1',
              detail: { jti: `j${i}`, n: i },
            }
          : {}),
      }));
      await s.appendAuditEvents(events.slice(0, 150));
      await s.appendAuditEvents(events.slice(150));
      await s.appendAuditEvents([]);
      assert.deepEqual(await auditEvents(s, { type: 'token.issued', limit: 1000 }), events);
      assert.deepEqual(await auditEvents(s, { limit: 2 }), events.slice(-2));
    });

    test('audit: the seq before a time; pruning keeps the anchor checkpoint and the chain going', async () => {
      const before = await s.auditHead();
      const t0 = new Date(Date.now() - 10_000).toISOString();
      assert.ok((await s.lastAuditSeqBefore(t0))! >= 300, 'the events of the test above are older');
      assert.equal(await s.lastAuditSeqBefore('2000-01-01T00:00:00Z'), undefined);
      await s.addAuditCheckpoint({ seq: 100, hash: 'h100', time: t0, kid: 'k', signature: 's' });
      await s.addAuditCheckpoint({ seq: 200, hash: 'h200', time: t0, kid: 'k', signature: 's' });
      assert.equal(await s.pruneAuditEvents(200), 200);
      assert.deepEqual(
        (await s.listAuditCheckpoints()).map((c) => c.seq),
        [200],
      );
      const rest = await s.queryAuditEvents({ limit: 1000 });
      assert.equal(rest[0]!.seq, 201);
      await s.appendAuditEvents([
        { time: new Date().toISOString(), type: 'token.issued', outcome: 'success', actor: 'after-prune' },
      ]);
      const head = await s.auditHead();
      assert.equal(head!.seq, before!.seq + 1, 'the chain continues from its head');
    });

    test('alerts: insert and list by cursor and detector; client locks', async () => {
      const base = {
        time: new Date().toISOString(),
        severity: 'high' as const,
        summary: 's',
        firstSeq: 1,
        lastSeq: 2,
        count: 2,
        detail: { n: 1 },
        response: null,
      };
      const a = await s.insertAlert({ ...base, detector: 'failed_auth_burst', key: 'client:x' });
      const b = await s.insertAlert({ ...base, detector: 'issuance_spike', key: 'client:y', response: 'locked' });
      assert.ok(b.id > a.id);
      assert.deepEqual(await s.listAlerts({ limit: 10 }), [a, b]);
      assert.deepEqual(await s.listAlerts({ after: a.id, limit: 10 }), [b]);
      assert.deepEqual(await s.listAlerts({ detector: 'failed_auth_burst', limit: 10 }), [a]);
      await s.createClient(client('lockme'));
      assert.equal(await s.lockClient('lockme', 1_900_000_000), true);
      assert.equal((await s.getClient('lockme'))!.lockedUntil, 1_900_000_000);
      assert.equal(await s.lockClient('lockme', null), true);
      assert.equal((await s.getClient('lockme'))!.lockedUntil, null);
      assert.equal(await s.lockClient('nobody', 1), false);
    });

    test('alerts: acknowledged once; listed by state', async () => {
      const base = {
        time: new Date().toISOString(),
        severity: 'low' as const,
        summary: 's',
        firstSeq: 1,
        lastSeq: 1,
        count: 1,
        detail: {},
        response: null,
        detector: 'ack_test',
        key: 'client:z',
      };
      const a = await s.insertAlert(base);
      const b = await s.insertAlert(base);
      assert.equal(a.acknowledgedAt, null);
      assert.equal(await s.acknowledgeAlert(a.id, 'admin', '2026-12-02T10:00:00.000Z'), true);
      assert.equal(await s.acknowledgeAlert(a.id, 'other', '2026-12-02T11:00:00.000Z'), false, 'once');
      assert.equal(await s.acknowledgeAlert(999_999_999, 'admin', '2026-12-02T10:00:00.000Z'), false);
      assert.deepEqual(await s.getAlert(a.id), {
        ...a,
        acknowledgedAt: '2026-12-02T10:00:00.000Z',
        acknowledgedBy: 'admin',
      });
      assert.equal(await s.getAlert(999_999_999), undefined);
      const ids = async (state?: 'open' | 'acknowledged') =>
        (await s.listAlerts({ detector: 'ack_test', limit: 10, ...(state ? { state } : {}) })).map((x) => x.id);
      assert.deepEqual(await ids('open'), [b.id]);
      assert.deepEqual(await ids('acknowledged'), [a.id]);
      assert.deepEqual(await ids(), [a.id, b.id]);
    });

    test('console sessions: created by cookie hash, ended once, purged after expiry', async () => {
      const session = {
        sid: 'sid-1',
        actor: 'admin:ann',
        sub: 'sub-ann',
        createdAt: 1_000,
        expiresAt: 2_000,
        endedAt: null,
      };
      await s.createConsoleSession('hash-1', session);
      assert.deepEqual(await s.getConsoleSession('hash-1'), session);
      assert.equal(await s.getConsoleSession('hash-2'), undefined);
      assert.equal(await s.endConsoleSession('sid-1', 1_500), true);
      assert.equal(await s.endConsoleSession('sid-1', 1_600), false);
      assert.deepEqual(await s.getConsoleSession('hash-1'), { ...session, endedAt: 1_500 });
      await s.purgeExpired(2_001);
      assert.equal(await s.getConsoleSession('hash-1'), undefined);
    });

    test('audit counts per time bucket, type, outcome and client, by seq range', async () => {
      const at = (time: string, type: 'token.issued' | 'key.created', client_id?: string) => ({
        time,
        type,
        outcome: 'success' as const,
        actor: 'counts',
        ...(client_id ? { client_id } : {}),
      });
      const start = ((await s.auditHead())?.seq ?? 0) + 1;
      await s.appendAuditEvents([
        at('2031-01-01T00:00:01.100Z', 'token.issued', 'a'),
        at('2031-01-01T00:00:01.900Z', 'token.issued', 'a'),
        at('2031-01-01T00:00:02.000Z', 'token.issued', 'b'),
        at('2031-01-01T00:00:02.500Z', 'key.created'),
        at('2031-01-01T00:01:00.000Z', 'token.issued'),
      ]);
      assert.deepEqual(await s.auditAtOrAfter(start), { seq: start, time: '2031-01-01T00:00:01.100Z' });
      assert.equal(await s.auditAtOrAfter(start + 5), undefined);
      const counts = await s.auditCounts({
        types: ['token.issued'],
        afterSeq: start - 1,
        throughSeq: start + 4,
        bucketChars: 19,
      });
      const key = (c: { bucket: string; client_id: string | null; n: number }) => `${c.bucket} ${c.client_id} ${c.n}`;
      assert.deepEqual(counts.map(key).sort(), [
        '2031-01-01T00:00:01 a 2',
        '2031-01-01T00:00:02 b 1',
        '2031-01-01T00:01:00 null 1',
      ]);
      const minutes = await s.auditCounts({
        types: ['token.issued', 'key.created'],
        afterSeq: start - 1,
        throughSeq: start + 3,
        bucketChars: 16,
      });
      assert.deepEqual(minutes.map((c) => `${c.bucket} ${c.type} ${c.client_id} ${c.n}`).sort(), [
        '2031-01-01T00:00 key.created null 1',
        '2031-01-01T00:00 token.issued a 2',
        '2031-01-01T00:00 token.issued b 1',
      ]);
      assert.deepEqual(await s.auditCounts({ types: [], afterSeq: 0, throughSeq: 1e9, bucketChars: 16 }), []);
    });

    test('policy versions: the next version once only; newest is active; the policy feed stream continues the cursor', async () => {
      const v = (version: number) => ({
        version,
        digest: `d${version}`,
        publishedAt: `2026-11-28T00:00:0${version}.000Z`,
        actor: 'admin',
        note: null,
        schema: { s: 'entity A;' },
        policies: { p: 'permit(principal, action, resource);' },
        entities: [{ uid: { type: 'A', id: 'x' }, attrs: {}, parents: [] }],
      });
      assert.equal(await s.getPolicyVersion(), undefined);
      assert.equal(await s.insertPolicyVersion(v(1)), true);
      assert.equal(await s.insertPolicyVersion(v(1)), false, 'a concurrent publish of the same version loses');
      assert.equal(await s.insertPolicyVersion(v(2)), true);
      assert.deepEqual(await s.getPolicyVersion(), v(2));
      assert.deepEqual(await s.getPolicyVersion(1), v(1));
      assert.deepEqual(
        (await s.listPolicyVersions(10)).map((x) => x.version),
        [2, 1],
      );
      const before = await s.latestFeedSeq();
      const e = await s.appendFeedEvent({
        stream: 'policy',
        kind: 'policy.published',
        iss: 'https://i',
        ref: '2',
        notBefore: null,
        expiresAt: 4_000_000_000,
        createdAt: 1,
        data: { digest: 'd2' },
      });
      assert.ok(e.seq > before);
      assert.deepEqual(
        (await s.listFeedEvents('policy', before, 10, 0)).map((x) => x.ref),
        ['2'],
      );
    });

    test('settings: set-if-absent keeps the first value', async () => {
      assert.equal(await s.getSetting('x'), undefined);
      assert.equal(await s.setSettingIfAbsent('x', '1'), '1');
      assert.equal(await s.setSettingIfAbsent('x', '2'), '1');
      await s.setSetting('x', '3');
      assert.equal(await s.getSetting('x'), '3');
    });

    test('settings: compare-and-set replaces only the expected value, with its audit event only when it does', async () => {
      await s.setSettingIfAbsent('cas', 'a');
      const event = (n: string) => ({
        time: new Date().toISOString(),
        type: 'ca.rotated' as const,
        outcome: 'success' as const,
        actor: 'admin',
        subject: n,
      });
      assert.equal(await s.replaceSetting('cas', 'a', 'b', [event('first')]), true);
      assert.equal(
        await s.replaceSetting('cas', 'a', 'c', [event('second')]),
        false,
        'a writer that read an older value loses',
      );
      assert.equal(await s.getSetting('cas'), 'b');
      assert.equal(await s.replaceSetting('missing', 'a', 'b'), false);
      const rotated = await auditEvents(s, { type: 'ca.rotated', limit: 10 });
      assert.deepEqual(
        rotated.map((e) => e.subject),
        ['first'],
      );
    });

    test('users: create, get by sub and by username key, page through, update, delete; a taken username → storage_conflict', async () => {
      await s.createUser(user('u-1', 'Alice'));
      await assert.rejects(
        s.createUser(user('u-2', 'ALICE')),
        (e: unknown) => e instanceof LatchkeyError && e.code === 'storage_conflict',
      );
      assert.deepEqual(await s.getUser('u-1'), user('u-1', 'Alice'));
      assert.deepEqual(await s.getUserByUsername('alice'), user('u-1', 'Alice'));
      assert.equal(await s.getUser('nobody'), undefined);
      assert.equal(await s.getUserByUsername('nobody'), undefined);
      for (const [sub, name] of [
        ['u-3', 'carol'],
        ['u-2', 'bob'],
        ['u-4', 'dave'],
      ] as const)
        await s.createUser(user(sub, name));
      const first = await s.listUsers({ limit: 2 });
      assert.deepEqual(
        first.users.map((u) => u.username),
        ['Alice', 'bob'],
      );
      assert.equal(first.next, 'bob');
      const second = await s.listUsers({ after: first.next as string, limit: 2 });
      assert.deepEqual(
        second.users.map((u) => u.username),
        ['carol', 'dave'],
      );
      assert.equal(second.next, null, 'no third page');
      const changed = user('u-1', 'Alice', {
        passwordHash: null,
        passwordChangedAt: null,
        mustChangePassword: true,
        roles: [],
        groups: ['eu', 'admins'],
        attributes: {},
        disabled: true,
        email: null,
        name: 'Alice A.',
        updatedAt: 1_700_000_500,
        mfaRequired: true,
        totpSecret: 'v1.sealed.secret',
        totpLastStep: 60_000_000,
      });
      assert.equal(await s.updateUser(changed), true);
      assert.deepEqual(await s.getUser('u-1'), changed);
      assert.equal(await s.updateUser(user('ghost', 'ghost')), false);
      assert.equal(await s.useTotpStep('u-1', 60_000_000), false, 'the same step again');
      const steps = await Promise.all([s.useTotpStep('u-1', 60_000_001), s.useTotpStep('u-1', 60_000_001)]);
      assert.deepEqual(steps.sort(), [false, true], 'a new step once, under concurrency');
      await s.setRecoveryCodes('u-1', ['r1', 'r2']);
      assert.equal(await s.recoveryCodesLeft('u-1'), 2);
      const codes = await Promise.all([s.useRecoveryCode('u-1', 'r1', 5), s.useRecoveryCode('u-1', 'r1', 5)]);
      assert.deepEqual(codes.sort(), [false, true], 'a recovery code once, under concurrency');
      assert.equal(await s.useRecoveryCode('u-1', 'nope', 5), false);
      assert.equal(await s.recoveryCodesLeft('u-1'), 1);
      assert.equal(await s.deleteUser('u-1'), true);
      assert.equal(await s.deleteUser('u-1'), false);
      assert.equal(await s.getUserByUsername('alice'), undefined);
      await s.createUser(user('u-5', 'alice'));
      assert.equal((await s.getUserByUsername('alice'))?.sub, 'u-5', 'a deleted username may be taken again');
    });

    test('login failures: counted atomically under concurrency, per window, cleared and purged', async () => {
      const now = 1_700_000_000_000;
      const keys = ['user:u-9', 'user-source:u-9 127.0.0.1'];
      const counts = await Promise.all(
        Array.from({ length: 20 }, (_, i) => s.recordLoginFailure(keys, now + i, 60_000)),
      );
      // Every failure counted once: the counts handed out are exactly 1..20 for each key.
      for (const k of [0, 1])
        assert.deepEqual(
          counts.map((c) => c[k]).sort((a, b) => (a as number) - (b as number)),
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
      const seen = await s.loginFailures([...keys, 'user:nobody']);
      assert.equal(seen.size, 2);
      assert.equal(seen.get(keys[0] as string)?.failures, 20);
      assert.ok((seen.get(keys[0] as string)?.lastFailureAt as number) >= now);
      // A failure after a quiet window starts again at 1.
      assert.deepEqual(await s.recordLoginFailure([keys[0] as string], now + 120_000, 60_000), [1]);
      await s.clearLoginFailures([keys[0] as string]);
      assert.equal((await s.loginFailures(keys)).has(keys[0] as string), false);
      assert.equal(await s.purgeLoginFailures(now + 60_000), 1, 'the other key is older than the cutoff');
      // An unlock forgets a user's counts from every source, and nobody else's.
      await s.recordLoginFailure(
        ['user:u-9', 'user:u-9 127.0.0.2', 'user:u-9 ::1', 'user:u-99 ::1', 'user:u-9x'],
        now,
        60_000,
      );
      await s.clearLoginFailuresOf('user:u-9');
      assert.deepEqual(
        [
          ...(
            await s.loginFailures(['user:u-9', 'user:u-9 127.0.0.2', 'user:u-9 ::1', 'user:u-99 ::1', 'user:u-9x'])
          ).keys(),
        ].sort(),
        ['user:u-99 ::1', 'user:u-9x'],
      );
      await s.clearLoginFailures(['user:u-99 ::1', 'user:u-9x']);
      assert.equal((await s.loginFailures(keys)).size, 0);
    });

    test('refresh tokens: a family with its tokens; a token used once under concurrency; revoked once; codes once', async () => {
      const family = {
        familyId: 'fam-1',
        clientId: 'app',
        sub: 'u-1',
        scope: 'openid',
        resource: ['https://a.example'],
        authTime: 1_700_000_000,
        createdAt: 1_700_000_000,
        expiresAt: 1_700_003_600,
        revokedAt: null,
        revokedReason: null,
        sid: 'sess-1',
      };
      const token = (hash: string, jti: string) => ({
        tokenHash: hash,
        familyId: 'fam-1',
        issuedAt: 1_700_000_000,
        expiresAt: 1_700_003_600,
        usedAt: null,
        jti,
        jtiExpiresAt: 1_700_000_300,
      });
      await s.createRefreshFamily(family, token('h-1', 'j-1'));
      const uses = await Promise.all(Array.from({ length: 5 }, () => s.useRefreshToken('h-1', 1_700_000_010)));
      assert.equal(uses.filter((u) => u?.first).length, 1, 'exactly one use is the first');
      assert.deepEqual(uses[0]?.family, family);
      assert.equal(uses.find((u) => !u?.first)?.token.usedAt, 1_700_000_010);
      await s.addRefreshToken(token('h-2', 'j-2'));
      assert.deepEqual((await s.getRefreshToken('h-2'))?.token, token('h-2', 'j-2'));
      assert.equal(await s.useRefreshToken('nope', 1), undefined);
      assert.deepEqual((await s.liveRefreshFamilyTokens('fam-1', 1_700_000_100)).map((t) => t.jti).sort(), [
        'j-1',
        'j-2',
      ]);
      assert.equal(await s.revokeRefreshFamily('fam-1', 1_700_000_100, 'reuse'), true);
      assert.equal(await s.revokeRefreshFamily('fam-1', 1_700_000_200, 'again'), false, 'once');
      assert.deepEqual((await s.getRefreshFamily('fam-1'))?.revokedReason, 'reuse');
      assert.equal((await s.listRefreshFamilies('u-1')).length, 1);
      assert.deepEqual(
        (await s.listSessionRefreshFamilies('sess-1')).map((f) => f.familyId),
        ['fam-1'],
      );
      const code = {
        codeHash: 'c-1',
        clientId: 'app',
        sub: 'u-1',
        redirectUri: 'https://a.example/cb',
        codeChallenge: 'x'.repeat(43),
        scope: null,
        nonce: 'n',
        resource: null,
        authTime: 1,
        expiresAt: 2,
        sid: 'sess-1',
      };
      await s.saveAuthorizationCode(code);
      const codeUses = await Promise.all(Array.from({ length: 4 }, () => s.useAuthorizationCode('c-1', 1)));
      assert.equal(codeUses.filter((u) => u?.first).length, 1);
      await s.setAuthorizationCodeJti('c-1', 'j-9', 'fam-1');
      assert.deepEqual(await s.useAuthorizationCode('c-1', 1), { code, first: false, jti: 'j-9', familyId: 'fam-1' });
    });

    test('status lists: blocks never overlap under concurrency; a full list starts the next; revocations cover entries', async () => {
      const now = Math.floor(Date.now() / 1000);
      // A fresh list for this test, whatever earlier runs left: ask for a block as large as a list.
      const start = await s.allocateStatusIndices(4096, 4096, 600);
      assert.equal(start.first, 0);
      const blocks = await Promise.all(Array.from({ length: 6 }, () => s.allocateStatusIndices(1024, 4096, 600)));
      const seen = new Set(blocks.map((b) => `${b.listId}:${b.first}`));
      assert.equal(seen.size, 6, 'no block handed out twice');
      // 4 blocks of 1024 fill one list of 4096; the next two start another list.
      const firsts = (id: number) =>
        blocks
          .filter((b) => b.listId === id)
          .map((b) => b.first)
          .sort((a, b) => a - b);
      assert.deepEqual(firsts(start.listId + 1), [0, 1024, 2048, 3072]);
      assert.equal(firsts(start.listId + 2).length, 2);
      assert.deepEqual((await s.getStatusList(start.listId + 2))?.size, 4096);
      assert.equal(await s.getStatusList(start.listId + 99), undefined);
      assert.ok((await s.liveStatusLists()).includes(start.listId + 2));

      const list = start.listId;
      const entry = (idx: number, over: Partial<TokenStatusRecord>): TokenStatusRecord => ({
        listId: list,
        idx,
        jti: `jti-${list}-${idx}`,
        originJti: null,
        clientId: `svc-${list}`,
        sub: `svc-${list}`,
        kid: 'kid-a',
        iat: now - 10,
        ...over,
      });
      await s.appendAuditEvents(
        [],
        [
          entry(0, {}),
          entry(1, {}),
          entry(2, { clientId: `other-${list}`, sub: `user-${list}` }),
          entry(3, { clientId: `other-${list}`, sub: `other-${list}`, originJti: `jti-${list}-0` }),
          entry(4, { clientId: `other-${list}`, sub: `other-${list}`, kid: `kid-${list}` }),
          entry(5, { clientId: `other-${list}`, sub: `other-${list}`, iat: now + 5 }),
          entry(6, { clientId: `svc2-${list}`, sub: `svc2-${list}` }),
        ],
      );
      const revoked = async () => (await s.revokedStatusIndices('https://i', list)).sort((a, b) => a - b);
      assert.deepEqual(await revoked(), []);
      const feed = { iss: 'https://i', createdAt: now, data: null, stream: 'revocations' as const };
      // A token by jti: the token exchanged from it is found here; the token itself by its jti (status_jti.ts).
      await s.appendFeedEvent({ ...feed, kind: 'token', ref: `jti-${list}-0`, notBefore: null, expiresAt: now + 300 });
      assert.deepEqual(await revoked(), [3]);
      assert.ok((await s.revokedTokenJtis('https://i')).includes(`jti-${list}-0`));
      assert.deepEqual(await s.tokenStatusesAt(list, [0, 1, 999]), [
        { idx: 0, jti: `jti-${list}-0` },
        { idx: 1, jti: `jti-${list}-1` },
      ]);
      // A user's not-before: their tokens issued up to then.
      await s.appendFeedEvent({ ...feed, kind: 'subject', ref: `user-${list}`, notBefore: now, expiresAt: now + 300 });
      assert.deepEqual(await revoked(), [2, 3]);
      // A client's not-before: its tokens issued up to then, not one issued later (5).
      await s.appendFeedEvent({ ...feed, kind: 'client', ref: `other-${list}`, notBefore: now, expiresAt: now + 300 });
      assert.deepEqual(await revoked(), [2, 3, 4]);
      // A service as a subject (sub = client_id).
      await s.appendFeedEvent({ ...feed, kind: 'subject', ref: `svc2-${list}`, notBefore: now, expiresAt: now + 300 });
      assert.deepEqual(await revoked(), [2, 3, 4, 6]);
      // A key: what it signed.
      await s.appendFeedEvent({ ...feed, kind: 'key', ref: `kid-${list}`, notBefore: null, expiresAt: now + 300 });
      await s.appendFeedEvent({ ...feed, kind: 'client', ref: `svc-${list}`, notBefore: now, expiresAt: now + 300 });
      assert.deepEqual(await revoked(), [0, 1, 2, 3, 4, 6]);
      // Another issuer's revocations cover nothing here.
      assert.deepEqual(await s.revokedStatusIndices('https://other', list), []);
      // A list's entries go once every token in it has expired (its cover from the last reservation),
      // and the list with them, but not the list indices are being handed out from.
      await s.purgeExpired(now + 300);
      assert.deepEqual(await revoked(), [0, 1, 2, 3, 4, 6], 'not yet');
      await s.purgeExpired(now + 602);
      assert.deepEqual(await s.revokedStatusIndices('https://i', list), []);
      assert.equal(await s.getStatusList(list), undefined);
      const current = (await s.liveStatusLists()).at(-1) as number;
      assert.ok(current >= start.listId + 2 && (await s.getStatusList(current)) !== undefined);
    });

    test('data survives closing and reopening', async () => {
      await s.createClient(client('durable'));
      const again = await env.reopen();
      assert.deepEqual(await again.getClient('durable'), client('durable'));
      await again.close();
    });
  });
}

contract('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-sqlite-'));
  const file = join(dir, 'latchkey.db');
  const mk = async () => {
    const st = new SqliteStorage(file);
    await st.migrate();
    return st;
  };
  return { storage: await mk(), reopen: mk, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
});

const pgConfigured = testDatabaseUrl() !== undefined;
if (pgConfigured) {
  contract('PostgreSQL', async () => {
    const url = (await startPostgresIfConfigured()) as string;
    const mk = async () => {
      const st = new PostgresStorage(url);
      await st.migrate();
      return st;
    };
    return { storage: await mk(), reopen: mk, cleanup: async () => {} };
  });
} else {
  test('storage contract: PostgreSQL', {
    skip: 'LATCHKEY_TEST_DATABASE_URL is not set (CI sets it and fails without it)',
  }, () => {});
}

test('SQLite migration 6 rebuilds the feed table without reusing a cursor that was handed out and purged', async () => {
  const { default: Database } = await import('better-sqlite3');
  const { migrations } = await import('@latchkey/server');
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-mig6-'));
  try {
    const file = join(dir, 'latchkey.db');
    const db = new Database(file);
    db.exec(
      'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
    );
    for (const m of migrations.filter((x) => x.version <= 5)) {
      db.exec(m.sqlite);
      db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, 'then');
    }
    const insert = db.prepare(
      "INSERT INTO feed_events (stream, kind, iss, ref, not_before, expires_at, created_at, data) VALUES ('revocations', 'token', 'i', ?, NULL, 1, 1, NULL)",
    );
    for (const ref of ['a', 'b', 'c']) insert.run(ref);
    db.exec('DELETE FROM feed_events WHERE seq = 3'); // purged after a consumer saw cursor 3
    db.close();
    const s = new SqliteStorage(file);
    await s.migrate();
    const e = await s.appendFeedEvent({
      stream: 'policy',
      kind: 'policy.published',
      iss: 'i',
      ref: '1',
      notBefore: null,
      expiresAt: 4_000_000_000,
      createdAt: 1,
      data: null,
    });
    assert.equal(e.seq, 4);
    assert.deepEqual(
      (await s.listFeedEvents('all', 0, 10, 0)).map((x) => x.seq),
      [1, 2, 4],
    );
    await s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SQLite: a write waits for another process’s writer without blocking the event loop, then succeeds', async () => {
  const { default: Database } = await import('better-sqlite3');
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-busy-'));
  try {
    const file = join(dir, 'latchkey.db');
    const s = new SqliteStorage(file);
    await s.migrate();
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE'); // another process's writer holds the lock
    let ticked = 0;
    const ticker = setInterval(() => ticked++, 5);
    const write = s.setSetting('busy', '1');
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(ticked >= 5, `the event loop kept running (${ticked} ticks) while the write waited`);
    other.exec('COMMIT');
    await write;
    clearInterval(ticker);
    assert.equal(await s.getSetting('busy'), '1');
    other.close();
    await s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
