// Differential tests over generated *schemas* (issue 11, finding 6): action groups, entity type
// hierarchies, namespaces, optional attributes and context types. For every generated estate the
// decision engine the SDK and the IdP share (CompiledBundle) must answer as cedar-wasm does when
// cedar-wasm is given the schema — the same decision, the same reasons, a refusal where Cedar
// refuses the request.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { PolicyEntity } from '@latchkey/protocol';
import { CompiledBundle } from '@latchkey/policy';

let seed = 4242;
const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
const chance = (p: number) => rnd(1000) < p * 1000;
const u = (type: string, id: string) => ({ type, id });

interface Estate {
  schema: string;
  ns: string;
  q: (name: string) => string;
  actions: string[];
  groups: string[];
  ctxAttrs: { name: string; type: 'Long' | 'String' | 'Boolean'; optional: boolean }[];
  userAttrs: { name: string; type: 'Long' | 'String' | 'Set<String>'; optional: boolean }[];
}

function estate(): Estate {
  const ns = pick(['', 'App', 'Acme::Docs']);
  // Sometimes the entity types live in the root namespace and only the actions in `ns` (the usual
  // shape: shared principals, per-service actions), so references cross namespaces.
  const split = ns !== '' && chance(0.5);
  const q = (name: string) => (ns && !(split && name !== 'Action') ? `${ns}::${name}` : name);
  const groups = Array.from({ length: 1 + rnd(3) }, (_, i) => `grp${i}`);
  const actions = Array.from({ length: 2 + rnd(4) }, (_, i) => `act${i}`);
  const ctxAttrs = Array.from({ length: rnd(3) }, (_, i) => ({
    name: `c${i}`,
    type: pick(['Long', 'String', 'Boolean'] as const),
    optional: chance(0.4),
  }));
  const userAttrs = Array.from({ length: 1 + rnd(3) }, (_, i) => ({
    name: `a${i}`,
    type: pick(['Long', 'String', 'Set<String>'] as const),
    optional: chance(0.4),
  }));
  const lines: string[] = [];
  lines.push('entity Role in [Role];');
  lines.push('entity Team in [Team, Role];');
  lines.push(
    `entity User in [Team, Role] { ${userAttrs.map((a) => `${a.name}${a.optional ? '?' : ''}: ${a.type}`).join(', ')} };`,
  );
  lines.push('entity Service in [Role];');
  lines.push('entity Folder in [Folder];');
  lines.push('entity Doc in [Folder] { owner: User, level: Long, label?: String };');
  // Groups form a hierarchy among themselves; actions join random groups.
  groups.forEach((g, i) => lines.push(`action ${g}${i > 0 && chance(0.6) ? ` in [${groups[rnd(i)]}]` : ''};`));
  const ctx =
    ctxAttrs.length > 0
      ? `, context: { ${ctxAttrs.map((c) => `${c.name}${c.optional ? '?' : ''}: ${c.type === 'Boolean' ? 'Bool' : c.type}`).join(', ')} }`
      : '';
  for (const a of actions) {
    const member = groups.filter(() => chance(0.5));
    const principals = chance(0.7) ? '[User, Service]' : pick(['User', 'Service']);
    lines.push(
      `action ${a}${member.length > 0 ? ` in [${member.join(', ')}]` : ''} appliesTo { principal: ${principals}, resource: [Doc]${ctx} };`,
    );
  }
  if (split) {
    const types = lines.filter((l) => l.startsWith('entity ')).join('\n');
    const acts = lines.filter((l) => l.startsWith('action ')).join('\n');
    return { schema: `${types}\nnamespace ${ns} {\n${acts}\n}`, ns, q, actions, groups, ctxAttrs, userAttrs };
  }
  const body = lines.join('\n');
  return { schema: ns ? `namespace ${ns} {\n${body}\n}` : body, ns, q, actions, groups, ctxAttrs, userAttrs };
}

function entities(e: Estate): PolicyEntity[] {
  const { q } = e;
  const out: PolicyEntity[] = [];
  for (let r = 0; r < 3; r++)
    out.push({
      uid: u(q('Role'), `r${r}`),
      attrs: {},
      parents: r > 0 && chance(0.5) ? [u(q('Role'), `r${r - 1}`)] : [],
    });
  for (let t = 0; t < 3; t++)
    out.push({
      uid: u(q('Team'), `t${t}`),
      attrs: {},
      parents: [u(q('Role'), `r${rnd(3)}`), ...(t > 0 && chance(0.5) ? [u(q('Team'), `t${t - 1}`)] : [])],
    });
  for (let i = 0; i < 6; i++) {
    const attrs: Record<string, unknown> = {};
    for (const a of e.userAttrs) {
      if (a.optional && chance(0.4)) continue;
      attrs[a.name] =
        a.type === 'Long' ? rnd(5) : a.type === 'String' ? pick(['x', 'y']) : ['x', 'y', 'z'].filter(() => chance(0.5));
    }
    out.push({
      uid: u(q('User'), `u${i}`),
      attrs,
      parents: [u(q('Team'), `t${rnd(3)}`), ...(chance(0.3) ? [u(q('Role'), `r${rnd(3)}`)] : [])],
    });
  }
  for (let s = 0; s < 2; s++)
    out.push({ uid: u(q('Service'), `s${s}`), attrs: {}, parents: chance(0.7) ? [u(q('Role'), `r${rnd(3)}`)] : [] });
  for (let f = 0; f < 3; f++)
    out.push({ uid: u(q('Folder'), `f${f}`), attrs: {}, parents: f > 0 ? [u(q('Folder'), `f${f - 1}`)] : [] });
  for (let d = 0; d < 6; d++) {
    out.push({
      uid: u(q('Doc'), `d${d}`),
      attrs: {
        owner: { __entity: u(q('User'), `u${rnd(6)}`) },
        level: rnd(4),
        ...(chance(0.5) ? { label: pick(['x', 'y']) } : {}),
      },
      parents: [u(q('Folder'), `f${rnd(3)}`)],
    });
  }
  return out;
}

function policies(e: Estate): Record<string, string> {
  const { q } = e;
  const ref = (t: string, id: string) => `${q(t)}::"${id}"`;
  const actionRef = (a: string) => `${q('Action')}::"${a}"`;
  const cond = (): string => {
    const c = e.ctxAttrs.length > 0 ? pick(e.ctxAttrs) : undefined;
    const a = pick(e.userAttrs);
    return pick([
      () =>
        c
          ? c.type === 'Long'
            ? `context.${c.name} > ${rnd(5)}`
            : c.type === 'String'
              ? `context.${c.name} == "x"`
              : `context.${c.name}`
          : 'true',
      () => (c ? `context has ${c.name}` : 'false'),
      () => `principal has ${a.name}`,
      () => `resource.level ${pick(['<', '>=', '=='])} ${rnd(4)}`,
      () => `resource has label && resource.label == "x"`,
      () => `resource.owner == principal`,
      () => `principal in ${ref('Role', `r${rnd(3)}`)}`,
      () => `resource in ${ref('Folder', `f${rnd(3)}`)}`,
      () =>
        a.type === 'Set<String>'
          ? `principal.${a.name}.contains("x")`
          : a.type === 'Long'
            ? `principal.${a.name} > 1`
            : `principal.${a.name} == "x"`,
    ])();
  };
  const out: Record<string, string> = {};
  const n = 3 + rnd(6);
  for (let i = 0; i < n; i++) {
    const action = pick([
      () => 'action',
      () => `action == ${actionRef(pick(e.actions))}`,
      () => `action in ${actionRef(pick(e.groups))}`,
      () => `action in [${actionRef(pick(e.groups))}, ${actionRef(pick(e.actions))}]`,
      () => `action in ${actionRef(pick(e.groups))}`,
    ])();
    const principal = pick([
      'principal',
      `principal in ${ref('Role', `r${rnd(3)}`)}`,
      `principal is ${q('User')}`,
      `principal in ${ref('Team', `t${rnd(3)}`)}`,
    ]);
    const when = chance(0.7) ? ` when { ${cond()} }` : '';
    out[`p${i}`] = `${pick(['permit', 'permit', 'forbid'])}(${principal}, ${action}, resource)${when};`;
  }
  return out;
}

function request(e: Estate, ents: PolicyEntity[]) {
  const { q } = e;
  const byKey = new Map(ents.map((x) => [`${x.uid.type}::${x.uid.id}`, x]));
  const principalUid = pick([u(q('User'), `u${rnd(7)}`), u(q('Service'), `s${rnd(2)}`), u(q('Team'), 't0')]);
  const principal = byKey.get(`${principalUid.type}::${principalUid.id}`) ?? {
    uid: principalUid,
    attrs: {},
    parents: [],
  };
  const resource = byKey.get(`${q('Doc')}::d${rnd(6)}`)!;
  const action = u(q('Action'), chance(0.9) ? pick(e.actions) : pick([...e.groups, 'undeclared']));
  const context: Record<string, unknown> = {};
  for (const c of e.ctxAttrs) {
    if (chance(c.optional ? 0.4 : 0.1)) continue; // sometimes a required one is missing: Cedar refuses
    context[c.name] = chance(0.08)
      ? 'wrong type'
      : c.type === 'Long'
        ? rnd(5)
        : c.type === 'String'
          ? pick(['x', 'y'])
          : chance(0.5);
  }
  if (chance(0.05)) context.undeclared = 1;
  return { principal, action, resource, context };
}

test("decisions equal cedar-wasm's (given the schema) on generated schemas with action groups, hierarchies, namespaces, optional attributes and context types", () => {
  let compared = 0;
  let refused = 0;
  let allowed = 0;
  let fast = 0;
  let fastDecisions = 0;
  for (let s = 0; s < 60; s++) {
    const e = estate();
    const ents = entities(e);
    const pol = policies(e);
    assert.equal(cedar.checkParseSchema(e.schema).type, 'success', e.schema);
    assert.equal(cedar.checkParseEntities({ entities: ents as cedar.EntityJson[], schema: e.schema }).type, 'success');
    const bundle = CompiledBundle.compile({ schema: { 's.cedarschema': e.schema }, policies: pol, entities: ents });
    if (bundle.json) fast++;
    const requests = Array.from({ length: 60 }, () => request(e, ents));
    // cedar-wasm's answers first, then ours (see cedar_eval.test.ts on interleaving).
    const reference = requests.map((r) =>
      cedar.isAuthorized({
        principal: r.principal.uid,
        action: r.action,
        resource: r.resource.uid,
        context: r.context as cedar.Context,
        // The request's own principal (known or not) is part of the entities, as the SDK passes it.
        schema: e.schema,
        validateRequest: true,
        policies: { staticPolicies: pol },
        entities: (ents.includes(r.principal) ? ents : [...ents, r.principal]) as cedar.EntityJson[],
      }),
    );
    requests.forEach((r, i) => {
      const ours = bundle.isAuthorized(r);
      const want = reference[i]!;
      const where = `${e.schema}\n${JSON.stringify(pol)}\n${JSON.stringify({ p: r.principal.uid, a: r.action, r: r.resource.uid, c: r.context })}`;
      if (want.type === 'failure') {
        assert.equal(ours.decision, 'deny', `Cedar refused the request; ours allowed\n${where}`);
        assert.equal(ours.refused, true, where);
        refused++;
        return;
      }
      assert.deepEqual(
        [ours.decision, [...ours.reasons].sort(), ours.errors.length > 0],
        [
          want.response.decision,
          [...want.response.diagnostics.reason].sort(),
          want.response.diagnostics.errors.length > 0,
        ],
        where,
      );
      if (ours.decision === 'allow') allowed++;
      compared++;
    });
    fastDecisions += bundle.counts.evaluator;
  }
  assert.ok(compared >= 1200, `compared ${compared}`);
  assert.ok(refused >= 100, `only ${refused} refused requests: the generator is too narrow`);
  assert.ok(allowed >= 200, `only ${allowed} allowed: the generator is too narrow`);
  assert.ok(fast >= 50, `the TypeScript evaluator was used for only ${fast} of 60 estates`);
  assert.ok(
    fastDecisions >= compared / 2,
    `only ${fastDecisions} of ${compared} decisions were taken by the TypeScript evaluator`,
  );
  console.log(
    `# schema-differential: ${compared} decisions compared, ${refused} refused as Cedar refused them, ${allowed} allowed, fast path on ${fast} of 60 estates, ${fastDecisions} decisions by the evaluator`,
  );
});

test("finding 6: a forbid on an action group the schema declares denies its members, in the SDK engine and the IdP's", () => {
  const schema =
    'namespace Docs { entity User; entity Doc; action writeActions; action edit in [writeActions] appliesTo { principal: User, resource: Doc }; action view appliesTo { principal: User, resource: Doc }; }';
  const b = CompiledBundle.compile({
    schema: { 'docs.cedarschema': schema },
    policies: {
      all: 'permit(principal, action, resource);',
      'no-writes': 'forbid(principal, action in Docs::Action::"writeActions", resource);',
    },
    entities: [],
  });
  const req = (action: string) => ({
    principal: { uid: u('Docs::User', 'ann'), attrs: {}, parents: [] },
    action: u('Docs::Action', action),
    resource: { uid: u('Docs::Doc', 'd'), attrs: {}, parents: [] },
    context: {},
  });
  assert.ok(b.json, 'the fast evaluator decides this bundle');
  assert.deepEqual(b.isAuthorized(req('edit')), { decision: 'deny', reasons: ['no-writes'], errors: [] });
  assert.deepEqual(b.isAuthorized(req('view')), { decision: 'allow', reasons: ['all'], errors: [] });
  // An undeclared action is refused, as Cedar refuses it given the schema (finding 20).
  const undeclared = b.isAuthorized(req('delete'));
  assert.equal(undeclared.decision, 'deny');
  assert.equal(undeclared.refused, true);
});
