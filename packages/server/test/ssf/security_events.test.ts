import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AuditEvent } from '@latchkey/protocol';
import { securityEventsOf } from '../../src/ssf/security_events.ts';

const ISS = 'https://idp.example';
const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
const user = { format: 'iss_sub', iss: ISS, sub: 'u-1' };
const svc = { format: 'iss_sub', iss: ISS, sub: 'orders' };
const ctx = {
  issuer: ISS,
  user: async (sub: string) =>
    sub === 'u-1'
      ? ({ sub, roles: ['admin'], groups: ['eu'], attributes: { department: 'sales' } } as never)
      : undefined,
};
const at = '2026-12-02T06:00:00.000Z';
const ev = (type: AuditEvent['type'], over: Partial<AuditEvent> = {}): AuditEvent => ({
  time: at,
  type,
  outcome: 'success',
  actor: 'admin',
  ...over,
});
const map = async (e: AuditEvent): Promise<[string, unknown, Record<string, unknown>][]> =>
  (await securityEventsOf(e, ctx)).map((s) => [
    s.type.replace(CAEP, 'caep:').replace(RISC, 'risc:'),
    s.subject,
    s.event,
  ]);

/** Which CAEP and RISC events each audit event stands for (the table in docs/shared-signals.md). */
describe('security events of audit events', () => {
  test('revocations: sessions, accounts, credentials', async () => {
    const ts = Date.parse(at) / 1000;
    assert.deepEqual(await map(ev('user.logout', { actor: 'u-1', subject: 'u-1' })), [
      [
        'caep:session-revoked',
        user,
        { event_timestamp: ts, initiating_entity: 'user', reason_admin: { en: 'signed out' } },
      ],
    ]);
    assert.deepEqual((await map(ev('subject.revoked', { subject: 'orders' })))[0]?.slice(0, 2), [
      'caep:session-revoked',
      svc,
    ]);
    // RFC 7009: an access token by its jti (SSF §3.4.1), a refresh token by its user; nothing revoked, nothing sent.
    assert.deepEqual(
      (await map(ev('token.revoked', { actor: 'orders', subject: 'orders', detail: { jti: 'j-1' } })))[0]?.slice(0, 2),
      ['caep:session-revoked', { format: 'jwt_id', iss: ISS, jti: 'j-1' }],
    );
    assert.deepEqual(
      (await map(ev('token.revoked', { actor: 'app', subject: 'u-1', detail: { refresh_family: 'f-1' } })))[0]?.slice(
        0,
        2,
      ),
      ['caep:session-revoked', user],
    );
    assert.deepEqual(await map(ev('token.revoked', { actor: 'orders', detail: {} })), []);
    assert.equal(
      (await map(ev('token.refresh_reused', { actor: 'system', subject: 'u-1' })))[0]?.[2].initiating_entity,
      'policy',
    );
    assert.deepEqual(
      (await map(ev('user.consent_revoked', { actor: 'u-1', subject: 'u-1', client_id: 'partner' })))[0]?.[0],
      'caep:session-revoked',
    );
    assert.deepEqual(
      (await map(ev('client.revoked', { client_id: 'orders', subject: 'orders' }))).map((x) => x[0]),
      ['risc:account-disabled'],
    );
    const compromised = await map(
      ev('client.revoked', {
        client_id: 'orders',
        subject: 'orders',
        detail: { compromised: true, method: 'private_key_jwt' },
      }),
    );
    assert.deepEqual(
      compromised.map((x) => x[0]),
      ['risc:account-disabled', 'risc:credential-compromise'],
    );
    assert.equal(compromised[1]?.[2].credential_type, 'private-key-jwt');
    assert.deepEqual(
      (
        await map(ev('client.locked', { actor: 'system', client_id: 'orders', detail: { alert_id: 1, until: at } }))
      )[0]?.[2].initiating_entity,
      'policy',
    );
    assert.deepEqual((await map(ev('client.unlocked', { client_id: 'orders' })))[0]?.[0], 'risc:account-enabled');
    assert.deepEqual((await map(ev('client.deleted', { client_id: 'orders' })))[0]?.[0], 'risc:account-purged');
    assert.deepEqual((await map(ev('user.disabled', { subject: 'u-1' })))[0]?.slice(0, 2), [
      'risc:account-disabled',
      user,
    ]);
    assert.deepEqual((await map(ev('user.enabled', { subject: 'u-1' })))[0]?.[0], 'risc:account-enabled');
    assert.deepEqual((await map(ev('user.deleted', { subject: 'u-1' })))[0]?.[0], 'risc:account-purged');
  });

  test('credential, assurance and claims changes', async () => {
    const pw = await map(ev('user.password_set', { subject: 'u-1' }));
    assert.deepEqual(pw[0]?.[2], {
      event_timestamp: Date.parse(at) / 1000,
      credential_type: 'password',
      change_type: 'update',
      initiating_entity: 'admin',
    });
    const enrolled = await map(
      ev('user.second_factor_enrolled', { actor: 'u-1', subject: 'u-1', detail: { factor: 'passkey' } }),
    );
    assert.deepEqual(
      enrolled.map((x) => x[0]),
      ['caep:credential-change', 'caep:assurance-level-change'],
    );
    assert.equal(enrolled[0]?.[2].credential_type, 'fido2-platform');
    assert.equal(enrolled[1]?.[2].change_direction, 'increase');
    const reset = await map(ev('user.second_factor_reset', { subject: 'u-1' }));
    assert.deepEqual(
      reset.map((x) => [x[0], x[2].change_type ?? x[2].change_direction]),
      [
        ['caep:credential-change', 'delete'],
        ['caep:assurance-level-change', 'decrease'],
      ],
    );
    // Roles and attributes changed: the new values, as the user is stored now.
    const claims = await map(
      ev('user.updated', {
        subject: 'u-1',
        detail: { roles: { added: ['admin'], removed: [] }, changed: ['attributes'] },
      }),
    );
    assert.deepEqual(claims[0]?.[0], 'caep:token-claims-change');
    assert.deepEqual(claims[0]?.[2].claims, { roles: ['admin'], attributes: { department: 'sales' } });
    // A change tokens do not carry (an email) is no claims change.
    assert.deepEqual(await map(ev('user.updated', { subject: 'u-1', detail: { changed: ['email'] } })), []);
  });

  test('failures and events that change nothing are no security events', async () => {
    assert.deepEqual(await map(ev('user.disabled', { subject: 'u-1', outcome: 'failure' })), []);
    assert.deepEqual(await map(ev('token.issued', { subject: 'u-1' })), []);
    assert.deepEqual(await map(ev('authz.decision', { subject: 'u-1' })), []);
  });
});
