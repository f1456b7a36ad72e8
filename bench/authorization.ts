// Issue 6 benchmark: one thread, a bundle of 100 policies and 10,000 entities, requests whose slice
// is principal + 2 groups + resource + its parent. (a) cedar-wasm isAuthorized called naively
// (policies and all entities every call), (b) statefulIsAuthorized with pre-parsed policies and the
// request's slice, (c) the SDK authorizer, cold and with repeated requests.
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { PolicyEntity } from '@latchkey/protocol';
import { createAuthorizer, type AuthorizeRequest } from '@latchkey/sdk/authorize';
import { startTestIdp } from '@latchkey/testkit';

const SCHEMA = `entity Role in [Role];
entity Group in [Role];
entity User in [Group, Role] { tenant: String, level: Long };
namespace Docs {
  entity Folder { tenant: String };
  entity Document in [Folder] { owner: User, tenant: String, classification: Long };
  action view, edit, share, delete appliesTo { principal: User, resource: Document, context: { hour: Long } };
}
`;

function bundle(): { policies: Record<string, string>; entities: PolicyEntity[]; requests: AuthorizeRequest[] } {
  const policies: Record<string, string> = {};
  const actions = ['view', 'edit', 'share', 'delete'];
  for (let i = 0; i < 100; i++) {
    const a = actions[i % 4];
    if (i % 10 === 9)
      policies[`forbid-${i}`] =
        `forbid(principal, action == Docs::Action::"${a}", resource) when { resource.classification > principal.level + ${i % 3} };`;
    else if (i % 3 === 0)
      policies[`rbac-${i}`] =
        `permit(principal in Role::"role-${i % 50}", action == Docs::Action::"${a}", resource in Docs::Folder::"folder-${i}") when { principal.tenant == resource.tenant };`;
    else if (i % 3 === 1)
      policies[`owner-${i}`] =
        `permit(principal in Group::"group-${i}", action == Docs::Action::"${a}", resource) when { resource.owner == principal && context.hour >= ${i % 8} };`;
    else
      policies[`abac-${i}`] =
        `permit(principal, action == Docs::Action::"${a}", resource) when { principal.tenant == resource.tenant && principal.level >= ${i % 5} && resource.classification < ${(i % 4) + 1} };`;
  }
  const e: PolicyEntity[] = [];
  const u = (type: string, id: string) => ({ type, id });
  for (let r = 0; r < 50; r++) e.push({ uid: u('Role', `role-${r}`), attrs: {}, parents: [] });
  for (let g = 0; g < 100; g++)
    e.push({ uid: u('Group', `group-${g}`), attrs: {}, parents: [u('Role', `role-${g % 50}`)] });
  for (let f = 0; f < 100; f++)
    e.push({ uid: u('Docs::Folder', `folder-${f}`), attrs: { tenant: `t${f % 5}` }, parents: [] });
  for (let i = 0; i < 2750; i++)
    e.push({
      uid: u('User', `user-${i}`),
      attrs: { tenant: `t${i % 5}`, level: i % 4 },
      parents: [u('Group', `group-${i % 100}`), u('Group', `group-${(i * 7) % 100}`)],
    });
  for (let d = 0; e.length < 10_000; d++) {
    e.push({
      uid: u('Docs::Document', `doc-${d}`),
      attrs: { owner: { __entity: u('User', `user-${d % 2750}`) }, tenant: `t${d % 5}`, classification: d % 4 },
      parents: [u('Docs::Folder', `folder-${d % 100}`)],
    });
  }
  const requests: AuthorizeRequest[] = [];
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let i = 0; i < 20_000; i++) {
    requests.push({
      principal: `User::"user-${rnd(2750)}"`,
      action: `Docs::Action::"${actions[rnd(4)]}"`,
      resource: `Docs::Document::"doc-${rnd(7000)}"`,
      context: { hour: rnd(24) },
    });
  }
  return { policies, entities: e, requests };
}

const quantile = (s: number[], q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
const ref = (s: string) => ({
  type: s.slice(0, s.lastIndexOf('::')),
  id: JSON.parse(s.slice(s.lastIndexOf('::') + 2)) as string,
});

export async function benchAuthorization(options: {
  ms: number;
}): Promise<Record<string, { perSecond: number; p50us: number; p99us: number; calls: number; mismatches: number }>> {
  const { policies, entities, requests } = bundle();
  const t = await startTestIdp();
  const out: Record<string, { perSecond: number; p50us: number; p99us: number; calls: number; mismatches: number }> =
    {};
  try {
    const svc = await t.register({ audiences: ['https://docs.internal'] });
    const res = await t.fetch(`${t.issuer}/admin/policy`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ schema: { 'schema.cedarschema': SCHEMA }, policies, entities }),
    });
    if (res.status !== 201) throw new Error(`push: ${res.status} ${await res.text()}`);
    const cold = await createAuthorizer({
      issuer: t.issuer,
      credentials: { clientId: svc.client_id, clientSecret: svc.client_secret },
      fetch: t.fetch,
      cacheSize: 0,
    });
    const warm = await createAuthorizer({
      issuer: t.issuer,
      credentials: { clientId: svc.client_id, clientSecret: svc.client_secret },
      fetch: t.fetch,
    });
    cedar.preparsePolicySet('bench-b', { staticPolicies: policies });
    const byUid = new Map(entities.map((x) => [`${x.uid.type}::${x.uid.id}`, x]));
    const sliceOf = (r: AuthorizeRequest) => {
      const p = byUid.get(`${ref(r.principal as string).type}::${ref(r.principal as string).id}`)!;
      const d = byUid.get(`${ref(r.resource as string).type}::${ref(r.resource as string).id}`)!;
      const owner = (d.attrs.owner as { __entity: { type: string; id: string } }).__entity;
      const s = [
        p,
        d,
        ...p.parents.map((x) => byUid.get(`${x.type}::${x.id}`)!),
        ...d.parents.map((x) => byUid.get(`${x.type}::${x.id}`)!),
      ];
      for (const g of p.parents)
        for (const r2 of byUid.get(`${g.type}::${g.id}`)!.parents) s.push(byUid.get(`${r2.type}::${r2.id}`)!);
      if (owner.id !== p.uid.id) s.push(byUid.get(`${owner.type}::${owner.id}`)!);
      return s;
    };
    const expected = new Map<number, string>();
    const run = (
      name: string,
      limitCalls: number,
      decide: (r: AuthorizeRequest, i: number) => string,
      minCalls = 0,
    ) => {
      const lat: number[] = [];
      let mismatches = 0;
      const end = performance.now() + options.ms;
      let i = 0;
      const t0 = performance.now();
      while ((performance.now() < end || i < minCalls) && i < limitCalls) {
        const r = requests[i % requests.length]!;
        const s = performance.now();
        const d = decide(r, i % requests.length);
        lat.push((performance.now() - s) * 1000);
        const want = expected.get(i % requests.length);
        if (want === undefined) expected.set(i % requests.length, d);
        else if (want !== d) mismatches++;
        i++;
      }
      const elapsed = (performance.now() - t0) / 1000;
      lat.sort((a, b) => a - b);
      out[name] = {
        perSecond: i / elapsed,
        p50us: quantile(lat, 0.5),
        p99us: quantile(lat, 0.99),
        calls: i,
        mismatches,
      };
    };
    const key = (ans: cedar.AuthorizationAnswer) =>
      ans.type === 'success'
        ? `${ans.response.decision}:${[...ans.response.diagnostics.reason].sort().join(',')}`
        : 'failure';
    // (a) first: its answers are the reference the others must equal.
    run(
      '(a) cedar-wasm isAuthorized, policies + all 10,000 entities each call',
      400,
      (r) =>
        key(
          cedar.isAuthorized({
            principal: ref(r.principal as string),
            action: ref(r.action as string),
            resource: ref(r.resource as string),
            context: r.context as cedar.Context,
            policies: { staticPolicies: policies },
            entities: entities as cedar.EntityJson[],
          }),
        ),
      30,
    );
    const checked = out['(a) cedar-wasm isAuthorized, policies + all 10,000 entities each call']!.calls;
    run("(b) cedar-wasm statefulIsAuthorized, pre-parsed policies, the request's slice", requests.length, (r) =>
      key(
        cedar.statefulIsAuthorized({
          principal: ref(r.principal as string),
          action: ref(r.action as string),
          resource: ref(r.resource as string),
          context: r.context as cedar.Context,
          preparsedPolicySetId: 'bench-b',
          entities: sliceOf(r) as cedar.EntityJson[],
        }),
      ),
    );
    const sdk = (a: typeof cold) => (r: AuthorizeRequest) => {
      const x = a.authorize(r);
      return `${x.decision}:${[...x.reasons].sort().join(',')}`;
    };
    run('(c) SDK authorizer, cold (no decision cache)', requests.length, sdk(cold));
    // Warm: the same 1,000 requests over and over (a service's hot set).
    const hot = requests.slice(0, 1000);
    for (const r of hot) warm.authorize(r);
    const saved = requests.splice(0, requests.length, ...hot);
    run('(c) SDK authorizer, repeated requests (decision cache)', 10_000_000, sdk(warm));
    requests.splice(0, requests.length, ...saved);
    out['(a) cedar-wasm isAuthorized, policies + all 10,000 entities each call']!.mismatches = 0;
    out.checkedAgainstA = { perSecond: checked, p50us: 0, p99us: 0, calls: checked, mismatches: 0 };
    cold.close();
    warm.close();
  } finally {
    await t.close();
  }
  return out;
}
