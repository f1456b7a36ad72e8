// Issue 11, findings 5 and 10: a Cedar policy must not be able to break the policy engine, and
// validation must not freeze the IdP.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CedarTrap, CompiledBundle, POLICY_LIMITS, withCedar } from '@latchkey/policy';
import { basicAuth, startTestIdp, type TestIdp } from '@latchkey/testkit';
import { BundleValidator } from '../../src/policy/bundle_validator.ts';

const A = 'https://orders.internal';
const SCHEMA = {
  'app.cedarschema': 'entity User; entity Doc; action read appliesTo { principal: User, resource: Doc };',
};
const orChain = (n: number) =>
  `permit(principal, action, resource) when { ${Array.from({ length: n }, (_, i) => `principal == User::"u${i}"`).join(' || ')} };`;
const parens = (n: number) => `permit(principal, action, resource) when { ${'('.repeat(n)}true${')'.repeat(n)} };`;
const plusChain = (n: number) =>
  `permit(principal, action, resource) when { ${Array.from({ length: n }, () => '1').join(' + ')} == 3 };`;

describe('a policy cannot break the policy engine (finding 5) or freeze the IdP (finding 10)', () => {
  let t: TestIdp;
  const admin = (path: string, body: unknown) =>
    t.fetch(`${t.issuer}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  before(async () => {
    t = await startTestIdp();
  });
  after(() => t.close());

  test('the policies that trapped cedar-wasm are refused with the documented limits, and validation keeps working', async () => {
    for (const [name, text] of [
      ['1,500-term ||', orChain(1500)],
      ['150 nested parentheses', parens(150)],
      ['2,000-term expression', plusChain(2000)],
    ] as const) {
      const v = await admin('/admin/policy/validate', { schema: SCHEMA, policies: { deep: text } });
      assert.equal(v.status, 200, name);
      const report = (await v.json()) as { ok: boolean; errors: { source: string; message: string }[] };
      assert.equal(report.ok, false, name);
      assert.equal(report.errors[0]!.source, 'deep');
      assert.match(report.errors[0]!.message, /at most (32|256) are allowed/, name);
      const push = await admin('/admin/policy', { schema: SCHEMA, policies: { deep: text } });
      assert.equal(push.status, 400, name);
    }
    // The engine is intact: a good bundle validates and publishes, and tokens are still issued.
    const ok = await admin('/admin/policy', { schema: SCHEMA, policies: { fine: orChain(100) } });
    assert.equal(ok.status, 201, await ok.text());
    const c = await t.register({ audiences: [A] });
    assert.equal(
      (
        await t.post(
          '/token',
          { grant_type: 'client_credentials' },
          { authorization: basicAuth(c.client_id, c.client_secret) },
        )
      ).status,
      200,
    );
    assert.equal((await t.fetch(`${t.issuer}/readyz`)).status, 200);
  });

  test('a trap does not outlive the call: the next call gets a fresh cedar-wasm instance', () => {
    assert.throws(() => withCedar((c) => c.policyToJson(parens(200))), CedarTrap);
    assert.equal(
      withCedar((c) => c.checkParsePolicySet({ staticPolicies: 'permit(principal, action, resource);' })).type,
      'success',
    );
  });

  test('a bundle that traps on evaluation denies (fail closed), then is marked broken; other bundles keep deciding', () => {
    // Past the limits (as a bundle from an older IdP could be), on the cedar-wasm path (an extension function).
    // 500 terms: evaluation traps (from about 400) while parsing does not (it does from about 700).
    const trapping = CompiledBundle.compile({
      schema: {},
      policies: {
        p: `permit(principal, action, resource) when { ip("10.0.0.1").isIpv4() && (${Array.from({ length: 500 }, () => 'context.x').join(' || ')}) };`,
      },
      entities: [],
    });
    const good = CompiledBundle.compile({
      schema: {},
      policies: { all: 'permit(principal, action, resource) when { ip("10.0.0.1").isIpv4() };' },
      entities: [],
    });
    const req = {
      principal: { uid: { type: 'User', id: 'u' }, attrs: {}, parents: [] },
      action: { type: 'Action', id: 'read' },
      resource: { type: 'Doc', id: 'd', attrs: {}, parents: [] } as never,
      context: { x: true },
    };
    req.resource = { uid: { type: 'Doc', id: 'd' }, attrs: {}, parents: [] } as never;
    for (let i = 0; i < 3; i++) {
      const r = trapping.isAuthorized(req);
      assert.deepEqual([r.decision, r.refused], ['deny', true]);
      assert.equal(good.isAuthorized(req).decision, 'allow', 'a fresh instance decides the next call');
    }
    assert.equal(trapping.broken, true);
    assert.match(trapping.isAuthorized(req).errors[0]!, /every decision denies/);
    // A request nested past the limit is refused before Cedar sees it.
    let deep: unknown = 1;
    for (let i = 0; i < POLICY_LIMITS.nesting + 2; i++) deep = { a: deep };
    const r = good.isAuthorized({ ...req, context: { x: deep } });
    assert.deepEqual([r.decision, r.refused], ['deny', true]);
  });

  test('an IdP whose token policy cannot be evaluated fails closed and is not ready; a good version restores it', async () => {
    const c = await t.register({ client_id: 'svc-closed', audiences: [A] });
    const token = () =>
      t.post(
        '/token',
        { grant_type: 'client_credentials', resource: A },
        { authorization: basicAuth(c.client_id, c.client_secret) },
      );
    assert.equal((await token()).status, 200);
    // A version that got into storage without the limits (an older IdP, a restored backup):
    // a Latchkey policy too deep for cedar-wasm.
    const head = (await t.idp.storage.listPolicyVersions(1))[0]!;
    const bad = `forbid(principal, action == Latchkey::Action::"request_token", resource) when { ${'('.repeat(200)}false${')'.repeat(200)} };`;
    const current = (await t.idp.storage.getPolicyVersion(head.version))!;
    assert.ok(
      await t.idp.storage.insertPolicyVersion({
        ...current,
        version: head.version + 1,
        digest: 'x'.repeat(43),
        policies: { ...current.policies, bad },
      }),
    );
    await t.idp.storage.appendFeedEvent({
      stream: 'policy',
      kind: 'policy.published',
      iss: t.issuer,
      ref: String(head.version + 1),
      notBefore: null,
      expiresAt: Math.floor(Date.now() / 1000) + 60,
      createdAt: Math.floor(Date.now() / 1000),
      data: {},
    });
    let refused = 0;
    for (let i = 0; i < 100 && refused === 0; i++) {
      if ((await token()).status === 400) refused++;
      else await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(refused, 1, 'tokens are refused while the newest policy cannot be evaluated');
    const ready = await t.fetch(`${t.issuer}/readyz`);
    assert.equal(ready.status, 503);
    assert.deepEqual(((await ready.json()) as { checks: Record<string, string> }).checks.policy, 'failed');
    // Publishing a good version (through the admin API, validated) restores service.
    const fixed = await admin('/admin/policy', { schema: current.schema, policies: current.policies });
    assert.equal(fixed.status, 201, await fixed.text());
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      ok = (await token()).status === 200;
      if (!ok) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(ok);
    assert.equal((await t.fetch(`${t.issuer}/readyz`)).status, 200);
  });

  test('a 3,000-deep group chain is refused at once by the hierarchy limit; validation runs off the event loop within its time budget', async () => {
    const chain = Array.from({ length: 3000 }, (_, i) => ({
      uid: { type: 'Group', id: `g${i}` },
      attrs: {},
      parents: i > 0 ? [{ type: 'Group', id: `g${i - 1}` }] : [],
    }));
    const started = Date.now();
    const res = await admin('/admin/policy/validate', {
      schema: { 'g.cedarschema': 'entity Group in [Group];' },
      policies: {},
      entities: chain,
    });
    const report = (await res.json()) as { ok: boolean; errors: { message: string }[] };
    assert.equal(report.ok, false);
    assert.match(report.errors[0]!.message, /hierarchy is 3000 levels deep; at most 64/);
    assert.ok(Date.now() - started < 5000);

    // A bundle within the limits that takes longer than the budget: refused, and the event loop kept ticking.
    const validator = new BundleValidator({ timeoutMs: 50 });
    try {
      const wide = Array.from({ length: 20_000 }, (_, i) => ({
        uid: { type: 'Group', id: `w${i}` },
        attrs: {},
        parents: i > 0 ? [{ type: 'Group', id: `w${(i - 1) % 50}` }] : [],
      }));
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 5);
      const r = await validator.validate({
        schema: { 'g.cedarschema': 'entity Group in [Group];' },
        policies: {},
        entities: wide,
      });
      clearInterval(ticker);
      assert.equal(r.ok, false);
      assert.match(
        r.errors[0]!.message,
        /validation took longer than 0.1 s and was stopped|validation took longer than 0 s/,
      );
      assert.ok(ticks >= 5, `the event loop ticked ${ticks} times while validating`);
      assert.equal(validator.timeouts, 1);
      // The next validation gets a new worker.
      assert.equal(
        (await validator.validate({ schema: { 'g.cedarschema': 'entity Group;' }, policies: {}, entities: [] })).ok,
        true,
      );
    } finally {
      await validator.close();
    }
  });
});
