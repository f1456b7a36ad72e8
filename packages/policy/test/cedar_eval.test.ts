// Differential tests: the SDK's TypeScript Cedar evaluator against cedar-wasm (the reference), on
// thousands of generated policy × request pairs. The evaluator must give Cedar's answer for every
// pair it answers, and must never answer where Cedar reports an evaluation error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { PolicyEntity } from '@latchkey/protocol';
import { EntityStore, EvalError, evalRequest, satisfied, Unsupported, decide, type PolicyJson } from '@latchkey/policy';

let seed = 12345;
const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
const u = (type: string, id: string) => ({ type, id });
const ref = (type: string, id: string) => `${type}::"${id}"`;

function world(): PolicyEntity[] {
  const e: PolicyEntity[] = [];
  for (let r = 0; r < 3; r++)
    e.push({ uid: u('Role', `r${r}`), attrs: { rank: r }, parents: r > 0 ? [u('Role', `r${r - 1}`)] : [] });
  for (let g = 0; g < 5; g++) e.push({ uid: u('Group', `g${g}`), attrs: {}, parents: [u('Role', `r${g % 3}`)] });
  for (let i = 0; i < 20; i++) {
    const attrs: Record<string, unknown> = {
      tenant: pick(['a', 'b']),
      level: rnd(4),
      tags: ['x', 'y', 'z'].filter(() => rnd(2) === 0),
      profile: { name: pick(['ann', 'bo', 'al*x']), age: rnd(90) },
    };
    if (i % 7 === 3) delete attrs.level; // missing attributes provoke errors
    e.push({
      uid: u('User', `u${i}`),
      attrs,
      parents: [u('Group', `g${i % 5}`), ...(i % 3 === 0 ? [u('Group', `g${(i + 2) % 5}`)] : [])],
    });
  }
  for (let f = 0; f < 4; f++)
    e.push({
      uid: u('Folder', `f${f}`),
      attrs: { tenant: pick(['a', 'b']) },
      parents: f > 0 ? [u('Folder', `f${f - 1}`)] : [],
    });
  for (let d = 0; d < 30; d++) {
    e.push({
      uid: u('Doc', `d${d}`),
      attrs: {
        owner: { __entity: u('User', `u${d % 20}`) },
        tenant: pick(['a', 'b']),
        classification: rnd(4),
        name: pick(['report', 'readme', 'a*b']),
      },
      parents: [u('Folder', `f${d % 4}`)],
    });
  }
  return e;
}

// Expressions, as Cedar text, of roughly the right type (sometimes the wrong one, on purpose).
const longExpr = (d: number): string => {
  const base = [
    () => String(rnd(10) - 3),
    () => 'principal.level',
    () => 'resource.classification',
    () => 'context.hour',
    () => 'principal.profile.age',
    () => 'Role::"r1".rank',
  ];
  if (d <= 0) return pick(base)();
  return pick([
    ...base,
    () => `(${longExpr(d - 1)} + ${longExpr(d - 1)})`,
    () => `(${longExpr(d - 1)} - ${longExpr(d - 1)})`,
    () => `(${longExpr(d - 1)} * ${rnd(4)})`,
    () => `-${longExpr(d - 1)}`,
    () => `(if ${boolExpr(d - 1)} then ${longExpr(d - 1)} else ${longExpr(d - 1)})`,
  ])();
};
const strExpr = (): string =>
  pick(['principal.tenant', 'resource.tenant', '"a"', '"b"', 'principal.profile.name', 'resource.name', 'context.ip']);
const entExpr = (): string =>
  pick([
    'principal',
    'resource',
    'resource.owner',
    ref('User', `u${rnd(20)}`),
    ref('Group', `g${rnd(5)}`),
    ref('Role', `r${rnd(3)}`),
    ref('Folder', `f${rnd(4)}`),
    'context.caller',
  ]);
const setExpr = (): string =>
  pick(['principal.tags', '["x"]', '["x", "y"]', '[]', `[${entExpr()}, ${entExpr()}]`, 'context.list']);
function boolExpr(d: number): string {
  const leaves = [
    () => `${longExpr(d - 1)} ${pick(['<', '<=', '>', '>=', '==', '!='])} ${longExpr(d - 1)}`,
    () => `${strExpr()} ${pick(['==', '!='])} ${strExpr()}`,
    () => `${entExpr()} in ${pick([entExpr(), `[${entExpr()}, ${entExpr()}]`])}`,
    () => `${entExpr()} == ${entExpr()}`,
    () =>
      `${pick(['principal', 'resource', 'principal.profile', 'resource.owner', 'context'])} has ${pick(['level', 'tenant', 'tags', 'name', 'profile', 'hour', 'missing'])}`,
    () => `${strExpr()} like "${pick(['a*', '*x', 'r*t', '*', 'al\\*x', 'a*b'])}"`,
    () => `${setExpr()}.${pick(['contains', 'containsAll', 'containsAny'])}(${pick([setExpr(), '"x"', entExpr()])})`,
    () => `${setExpr()}.isEmpty()`,
    () => `${entExpr()} is ${pick(['User', 'Doc', 'Group'])}${rnd(3) === 0 ? ` in ${entExpr()}` : ''}`,
    () => `{a: ${longExpr(0)}, b: ${strExpr()}}.${pick(['a', 'b'])} == ${pick([longExpr(0), strExpr()])}`,
    () => pick(['true', 'false', 'context.flag']),
  ];
  if (d <= 0) return pick(leaves)();
  return pick([
    ...leaves,
    () => `(${boolExpr(d - 1)} && ${boolExpr(d - 1)})`,
    () => `(${boolExpr(d - 1)} || ${boolExpr(d - 1)})`,
    () => `!(${boolExpr(d - 1)})`,
    () => `(if ${boolExpr(d - 1)} then ${boolExpr(d - 1)} else ${boolExpr(d - 1)})`,
  ])();
}
function policy(): string {
  const principal = pick([
    'principal',
    `principal == ${ref('User', `u${rnd(20)}`)}`,
    `principal in ${ref('Group', `g${rnd(5)}`)}`,
    `principal in ${ref('Role', `r${rnd(3)}`)}`,
    'principal is User',
    `principal is User in ${ref('Role', `r${rnd(3)}`)}`,
  ]);
  const action = pick(['action', 'action == Action::"read"', 'action in [Action::"read", Action::"write"]']);
  const resource = pick([
    'resource',
    `resource in ${ref('Folder', `f${rnd(4)}`)}`,
    'resource is Doc',
    `resource == ${ref('Doc', `d${rnd(30)}`)}`,
  ]);
  const conds = Array.from({ length: rnd(3) }, () => `${pick(['when', 'unless'])} { ${boolExpr(2)} }`).join(' ');
  return `${pick(['permit', 'permit', 'forbid'])}(${principal}, ${action}, ${resource}) ${conds};`;
}
function request() {
  const ctx: Record<string, unknown> = {
    hour: rnd(24),
    flag: rnd(2) === 0,
    ip: pick(['10.0.0.1', 'a']),
    list: ['x'],
    caller: { __entity: u('User', `u${rnd(20)}`) },
  };
  if (rnd(5) === 0) delete ctx.hour;
  return {
    principal: u('User', `u${rnd(22)}`),
    action: u('Action', pick(['read', 'write', 'delete'])),
    resource: u('Doc', `d${rnd(32)}`),
    context: ctx,
  };
}

test('the TypeScript evaluator agrees with cedar-wasm on every generated policy × request it answers, and defers on every error', () => {
  const entities = world();
  const store = new EntityStore(entities);
  const byKey = new Map(entities.map((e) => [`${e.uid.type}::${JSON.stringify(e.uid.id)}`, e]));
  const policies: [string, string, PolicyJson][] = [];
  while (policies.length < 120) {
    const text = policy();
    const j = cedar.policyToJson(text);
    if (j.type !== 'success') continue;
    const id = `p${policies.length}`;
    assert.equal(cedar.preparsePolicySet(`diff-${id}`, { staticPolicies: { [id]: text } }).type, 'success');
    policies.push([id, text, j.json as unknown as PolicyJson]);
  }
  const requests = Array.from({ length: 100 }, request);
  // cedar-wasm's answers first, then ours: interleaving the two at this rate (with many evaluation
  // errors) has crashed Node 20's V8 ("unreachable code" in the deoptimizer) — see docs/authorization.md.
  const reference: ('error' | boolean)[][] = requests.map((req) =>
    policies.map(([id]) => {
      const answer = cedar.statefulIsAuthorized({
        ...req,
        context: req.context as cedar.Context,
        preparsedPolicySetId: `diff-${id}`,
        entities: entities as cedar.EntityJson[],
      });
      assert.equal(answer.type, 'success');
      if (answer.type !== 'success') return 'error';
      return answer.response.diagnostics.errors.length > 0 ? 'error' : answer.response.diagnostics.reason.length > 0;
    }),
  );
  let compared = 0;
  let deferred = 0;
  let satisfiedCount = 0;
  requests.forEach((req, r) => {
    const principal = byKey.get(`User::${JSON.stringify(req.principal.id)}`) ?? {
      uid: req.principal,
      attrs: {},
      parents: [],
    };
    const resource = byKey.get(`Doc::${JSON.stringify(req.resource.id)}`) ?? {
      uid: req.resource,
      attrs: {},
      parents: [],
    };
    const er = evalRequest(store, principal, req.action, resource, req.context);
    policies.forEach(([, text, json], i) => {
      let ours: boolean | 'error' | 'unsupported';
      try {
        ours = satisfied(json, er);
      } catch (err) {
        if (err instanceof EvalError) ours = 'error';
        else if (err instanceof Unsupported) ours = 'unsupported';
        else throw err;
      }
      if (ours === 'unsupported') {
        deferred++;
        return;
      }
      compared++;
      const want = reference[r]![i]!;
      if (ours !== want)
        assert.fail(`${text}\n${JSON.stringify(req)}\nours: ${String(ours)}, cedar-wasm: ${String(want)}`);
      if (ours === true) satisfiedCount++;
    });
  });
  assert.ok(compared >= 11_000, `compared ${compared}`);
  assert.ok(deferred < compared / 100, `deferred ${deferred} of ${compared + deferred}`);
  assert.ok(satisfiedCount > compared / 50, `only ${satisfiedCount} satisfied pairs: the generator is too narrow`);
});

test('whole decisions (forbid over permit, default deny, reasons) agree with cedar-wasm over a generated bundle', () => {
  const entities = world();
  const store = new EntityStore(entities);
  const byKey = new Map(entities.map((e) => [`${e.uid.type}::${JSON.stringify(e.uid.id)}`, e]));
  const texts: Record<string, string> = {};
  const json: [string, PolicyJson][] = [];
  while (json.length < 40) {
    const text = policy();
    const j = cedar.policyToJson(text);
    if (j.type !== 'success') continue;
    texts[`p${json.length}`] = text;
    json.push([`p${json.length}`, j.json as unknown as PolicyJson]);
  }
  let agreed = 0;
  const requests = Array.from({ length: 1500 }, request);
  const reference = requests.map((req) =>
    cedar.isAuthorized({
      ...req,
      context: req.context as cedar.Context,
      policies: { staticPolicies: texts },
      entities: entities as cedar.EntityJson[],
    }),
  );
  requests.forEach((req, i) => {
    const principal = byKey.get(`User::${JSON.stringify(req.principal.id)}`) ?? {
      uid: req.principal,
      attrs: {},
      parents: [],
    };
    const resource = byKey.get(`Doc::${JSON.stringify(req.resource.id)}`) ?? {
      uid: req.resource,
      attrs: {},
      parents: [],
    };
    const ours = decide(json, evalRequest(store, principal, req.action, resource, req.context));
    const answer = reference[i]!;
    if (answer.type !== 'success') return;
    if (answer.response.diagnostics.errors.length > 0) {
      assert.equal(ours, undefined, 'an evaluation error hands the request to cedar-wasm');
      return;
    }
    if (!ours) return; // an unsupported construct: cedar-wasm decides
    assert.deepEqual(
      [ours.decision, [...ours.reasons].sort()],
      [answer.response.decision, [...answer.response.diagnostics.reason].sort()],
    );
    agreed++;
  });
  assert.ok(agreed >= 150, `only ${agreed} requests decided without errors`);
});
