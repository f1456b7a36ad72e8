import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { AUDIT_EVENT_TYPES } from '@latchkey/protocol';
import { AUDIT_EVENT_DETAILS } from '@latchkey/protocol/audit-details';
import { auditEvents, basicAuth, startTestIdp, type TestIdp } from '@latchkey/testkit';
import { Compile } from 'typebox/compile';
import { auditEventsMarkdown, EVENTS_BEGIN, SETTINGS_END } from '../../../../scripts/docs.ts';

describe('the audit event map (AUDIT_EVENT_DETAILS)', () => {
  let t: TestIdp;
  before(async () => {
    t = await startTestIdp();
  });
  after(() => t.close());

  test('covers every event type, and docs/audit.md shows the table made from it (npm run docs)', () => {
    assert.deepEqual(Object.keys(AUDIT_EVENT_DETAILS).sort(), [...AUDIT_EVENT_TYPES].sort());
    const doc = readFileSync(new URL('../../../../docs/audit.md', import.meta.url), 'utf8');
    const begin = doc.indexOf(EVENTS_BEGIN);
    const end = doc.indexOf(SETTINGS_END, begin);
    assert.ok(begin >= 0 && end > begin);
    assert.equal(doc.slice(begin + EVENTS_BEGIN.length, end).trim(), auditEventsMarkdown());
  });

  test('what the IdP writes matches the map: a run of issuance, failures, introspection, revocation, registration', async () => {
    const c = await t.register({ audiences: ['https://orders.internal'] });
    const auth = basicAuth(c.client_id, c.client_secret);
    const token = await t.post('/token', { grant_type: 'client_credentials' }, { authorization: auth });
    assert.equal(token.status, 200);
    await t.post('/token', { grant_type: 'client_credentials', scope: 'nope' }, { authorization: auth });
    await t.post('/token', { grant_type: 'client_credentials' }, { authorization: basicAuth(c.client_id, 'wrong') });
    await t.post('/introspect', { token: token.body.access_token }, { authorization: auth });
    await t.post('/revoke', { token: token.body.access_token }, { authorization: auth });
    await t.post('/introspect', { token: token.body.access_token }, { authorization: auth });
    const decision = await t.fetch(`${t.issuer}/audit/events`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        events: [
          {
            type: 'authz.decision',
            outcome: 'failure',
            actor: 'User::"u"',
            detail: { action: 'Action::"read"', policy_version: 1 },
          },
        ],
      }),
    });
    assert.equal(decision.status, 202);
    const wrongShape = await t.fetch(`${t.issuer}/audit/events`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        events: [{ type: 'authz.decision', outcome: 'failure', actor: 'User::"u"', detail: { policy_version: 'one' } }],
      }),
    });
    assert.equal(wrongShape.status, 400, 'a reported detail that contradicts the map is refused');
    await t.idp.audit.flush();
    const events = await auditEvents(t.idp.storage);
    const types = new Set(events.map((e) => e.type));
    for (const expected of [
      'client.registered',
      'token.issued',
      'token.request_failed',
      'client.auth_failed',
      'token.introspected',
      'token.revoked',
      'authz.decision',
      'key.created',
    ])
      assert.ok(types.has(expected as never), `${expected} was written`);
    for (const e of events) {
      const check = Compile(AUDIT_EVENT_DETAILS[e.type]);
      // An aggregated failure row adds its counting members to the type's detail; other rows (an
      // alert's own `count`, say) are checked whole.
      const { aggregated: _a, count: _c, first_time: _f, last_time: _l, ...rest } = e.detail ?? {};
      const detail = e.detail?.aggregated === true ? rest : (e.detail ?? {});
      assert.ok(
        check.Check(detail),
        `${e.type}: ${JSON.stringify(e.detail)} ${JSON.stringify([...check.Errors(detail)][0])}`,
      );
    }
  });
});
