// A Cedar evaluator over the JSON policy form (Cedar's EST, from cedar-wasm's policyToJson),
// shared by the SDK's authorizer and the IdP's own decisions — hot paths both. cedar-wasm stays the
// reference: the differential tests compare both on thousands of generated requests, and anything
// this evaluator does not implement (extension types such as ip/decimal/datetime, entity tags,
// templates) or any evaluation error sends the request to cedar-wasm instead, so the answer — and
// the error message — is always Cedar's own.
//
// Evaluation errors are exceptions, and they must never unwind through an Array builtin's callback
// (some/every/map): Node 20's V8 aborts the process ("Fatal error ... unreachable code" in
// Deoptimizer::DoComputeBuiltinContinuation) when such a frame is deoptimized under load, which the
// differential tests hit. Hence the plain loops on every path that can throw.
import type { PolicyEntity } from '@latchkey/protocol';

/** Thrown for a construct this evaluator leaves to cedar-wasm. */
export class Unsupported extends Error {}
/** A Cedar evaluation error: the policy is skipped (and the request handed to cedar-wasm for the message). */
export class EvalError extends Error {}

type Uid = { type: string; id: string };
const keyOf = (u: Uid): string => `${u.type}::${JSON.stringify(u.id)}`;

/** An entity value: its key (for equality and lookups) and its parts. */
export class EntityVal {
  readonly type: string;
  readonly id: string;
  readonly key: string;

  constructor(type: string, id: string, key: string = keyOf({ type, id })) {
    this.type = type;
    this.id = id;
    this.key = key;
  }
}
type Value = boolean | number | string | EntityVal | Value[] | RecordVal;
class RecordVal {
  readonly fields: Map<string, Value>;

  constructor(fields: Map<string, Value>) {
    this.fields = fields;
  }
}

/** The entities a request can see: the bundle's (with ancestors precomputed) plus the request's own. */
export class EntityStore {
  private readonly entities = new Map<string, PolicyEntity>();
  private readonly ancestors = new Map<string, Set<string>>();
  private readonly attrs = new Map<string, Map<string, Value>>();

  constructor(entities: readonly PolicyEntity[]) {
    for (const e of entities) this.entities.set(keyOf(e.uid), e);
  }

  get(key: string): PolicyEntity | undefined {
    return this.entities.get(key);
  }

  get size(): number {
    return this.entities.size;
  }

  /** A stored entity's attributes as values (converted once per bundle version). */
  attrsOf(key: string): Map<string, Value> | undefined {
    let m = this.attrs.get(key);
    if (m) return m;
    const e = this.entities.get(key);
    if (!e) return undefined;
    m = new Map();
    for (const [k, x] of Object.entries(e.attrs)) m.set(k, fromJson(x));
    this.attrs.set(key, m);
    return m;
  }

  /** Transitive ancestors of a stored entity (memoized for the bundle version). */
  ancestorsOf(key: string): Set<string> {
    let a = this.ancestors.get(key);
    if (a) return a;
    a = new Set();
    this.ancestors.set(key, a); // guards cycles
    const e = this.entities.get(key);
    if (e) {
      for (const p of e.parents) {
        const pk = keyOf(p);
        a.add(pk);
        for (const x of this.ancestorsOf(pk)) a.add(x);
      }
    }
    return a;
  }
}

/** One request: the store, plus the principal and resource entities as the request gives them. */
export interface EvalRequest {
  principal: EntityVal;
  action: EntityVal;
  resource: EntityVal;
  context: RecordVal;
  store: EntityStore;
  /** Entities given with the request (they shadow the store's). */
  local: Map<string, PolicyEntity>;
  /** Their attributes and ancestors, worked out once per request. */
  localAttrs: Map<string, Map<string, Value>>;
  localAncestors: Map<string, Set<string>>;
}

function isAncestor(req: EvalRequest, child: string, parent: string): boolean {
  if (child === parent) return true;
  const local = req.local.get(child);
  if (local) {
    // The request's own entity: its ancestors once per request, through the store's.
    let anc = req.localAncestors.get(child);
    if (!anc) {
      anc = new Set();
      for (const p of local.parents) {
        const pk = keyOf(p);
        anc.add(pk);
        for (const x of req.store.ancestorsOf(pk)) anc.add(x);
      }
      req.localAncestors.set(child, anc);
    }
    return anc.has(parent);
  }
  return req.store.ancestorsOf(child).has(parent);
}

/** A CedarValueJson from policies, entity attributes or context, as a runtime value. */
export function fromJson(v: unknown): Value {
  if (typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Unsupported('number outside the safe integer range');
    return v;
  }
  if (Array.isArray(v)) {
    const out: Value[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = fromJson(v[i]);
    return out;
  }
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('__entity' in o) {
      const u = o.__entity as Uid;
      return new EntityVal(u.type, u.id);
    }
    if ('__extn' in o) throw new Unsupported('extension value');
    const m = new Map<string, Value>();
    for (const [k, x] of Object.entries(o)) m.set(k, fromJson(x));
    return new RecordVal(m);
  }
  throw new EvalError('null is not a Cedar value');
}

/** Whether every element of `items` is in `set` (by Cedar equality). */
function covers(set: readonly Value[], items: readonly Value[]): boolean {
  for (const x of items) if (!member(set, x)) return false;
  return true;
}

function member(set: readonly Value[], x: Value): boolean {
  for (const y of set) if (equal(x, y)) return true;
  return false;
}

function equal(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (a instanceof EntityVal) return b instanceof EntityVal && a.key === b.key;
  if (Array.isArray(a)) {
    // Sets: equal when each has every element of the other.
    if (!Array.isArray(b)) return false;
    return covers(b, a) && covers(a, b);
  }
  if (a instanceof RecordVal) {
    if (!(b instanceof RecordVal) || a.fields.size !== b.fields.size) return false;
    for (const [k, v] of a.fields) {
      const w = b.fields.get(k);
      if (w === undefined || !equal(v, w)) return false;
    }
    return true;
  }
  return false;
}

const bool = (v: Value): boolean => {
  if (typeof v !== 'boolean') throw new EvalError('expected a boolean');
  return v;
};
const long = (v: Value): number => {
  if (typeof v !== 'number') throw new EvalError('expected a long');
  return v;
};
const set = (v: Value): Value[] => {
  if (!Array.isArray(v)) throw new EvalError('expected a set');
  return v;
};
const entity = (v: Value): EntityVal => {
  if (!(v instanceof EntityVal)) throw new EvalError('expected an entity');
  return v;
};
/** Cedar longs are 64-bit and overflow is an error; beyond JS's safe integers we defer to cedar-wasm. */
const checked = (n: number): number => {
  if (!Number.isSafeInteger(n)) throw new Unsupported('arithmetic beyond the safe integer range');
  return n;
};

function attrsOf(req: EvalRequest, v: Value): Map<string, Value> | undefined {
  if (v instanceof RecordVal) return v.fields;
  if (v instanceof EntityVal) {
    const local = req.local.get(v.key);
    if (!local) return req.store.attrsOf(v.key);
    let m = req.localAttrs.get(v.key);
    if (!m) {
      m = new Map<string, Value>();
      for (const [k, x] of Object.entries(local.attrs)) m.set(k, fromJson(x));
      req.localAttrs.set(v.key, m);
    }
    return m;
  }
  throw new EvalError('expected an entity or a record');
}

function like(s: string, pattern: (string | { Literal: string })[]): boolean {
  // Glob match: "Wildcard" is *, literals match exactly.
  const parts = pattern;
  const match = (si: number, pi: number): boolean => {
    if (pi === parts.length) return si === s.length;
    const p = parts[pi]!;
    if (p === 'Wildcard') {
      for (let k = si; k <= s.length; k++) if (match(k, pi + 1)) return true;
      return false;
    }
    const lit = (p as { Literal: string }).Literal;
    return s.startsWith(lit, si) && match(si + lit.length, pi + 1);
  };
  return match(0, 0);
}

// biome-ignore lint/suspicious/noExplicitAny: Cedar's JSON expression AST (cedar-wasm policyToJson), walked by shape at compile time
type Expr = Record<string, any>;
/** An expression compiled to a closure (once per bundle version). */
type Compiled = (req: EvalRequest) => Value;

const cmp = (k: string, l: Value, r: Value): boolean => {
  if (typeof l !== 'number' || typeof r !== 'number') {
    // Cedar also orders datetime, duration and decimal values: extensions, left to cedar-wasm.
    if (typeof l === 'object' || typeof r === 'object') throw new Unsupported('comparison of non-longs');
    throw new EvalError('expected longs');
  }
  return k === '<' ? l < r : k === '<=' ? l <= r : k === '>' ? l > r : l >= r;
};

const inAny = (req: EvalRequest, l: EntityVal, r: Value): boolean => {
  if (Array.isArray(r)) {
    for (const p of r) if (isAncestor(req, l.key, entity(p).key)) return true;
    return false;
  }
  return isAncestor(req, l.key, entity(r).key);
};

/** Compiles an expression of Cedar's JSON form into a closure over the request. */
export function compile(e: Expr): Compiled {
  const k = Object.keys(e)[0]!;
  const x = e[k];
  switch (k) {
    case 'Value': {
      const v = fromJson(x);
      return () => v;
    }
    case 'Var':
      return x === 'principal'
        ? (req) => req.principal
        : x === 'action'
          ? (req) => req.action
          : x === 'resource'
            ? (req) => req.resource
            : (req) => req.context;
    case '!': {
      const a = compile(x.arg);
      return (req) => !bool(a(req));
    }
    case 'neg': {
      const a = compile(x.arg);
      return (req) => checked(-long(a(req)));
    }
    case '&&': {
      const l = compile(x.left);
      const r = compile(x.right);
      return (req) => (bool(l(req)) ? bool(r(req)) : false);
    }
    case '||': {
      const l = compile(x.left);
      const r = compile(x.right);
      return (req) => (bool(l(req)) ? true : bool(r(req)));
    }
    case '==':
    case '!=': {
      const l = compile(x.left);
      const r = compile(x.right);
      return k === '==' ? (req) => equal(l(req), r(req)) : (req) => !equal(l(req), r(req));
    }
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const l = compile(x.left);
      const r = compile(x.right);
      return (req) => cmp(k, l(req), r(req));
    }
    case '+':
    case '-':
    case '*': {
      const l = compile(x.left);
      const r = compile(x.right);
      if (k === '+') return (req) => checked(long(l(req)) + long(r(req)));
      if (k === '-') return (req) => checked(long(l(req)) - long(r(req)));
      return (req) => checked(long(l(req)) * long(r(req)));
    }
    case 'in': {
      const l = compile(x.left);
      const r = compile(x.right);
      return (req) => inAny(req, entity(l(req)), r(req));
    }
    case 'contains': {
      const l = compile(x.left);
      const r = compile(x.right);
      return (req) => {
        const a = set(l(req));
        const b = r(req);
        return member(a, b);
      };
    }
    case 'containsAll':
    case 'containsAny': {
      const l = compile(x.left);
      const r = compile(x.right);
      return k === 'containsAll'
        ? (req) => {
            const a = set(l(req));
            return covers(a, set(r(req)));
          }
        : (req) => {
            const a = set(l(req));
            for (const v of set(r(req))) if (member(a, v)) return true;
            return false;
          };
    }
    case 'isEmpty': {
      const a = compile(x.arg);
      return (req) => set(a(req)).length === 0;
    }
    case '.': {
      const l = compile(x.left);
      const attr = x.attr as string;
      return (req) => {
        const attrs = attrsOf(req, l(req));
        if (!attrs) throw new EvalError('entity does not exist');
        const v = attrs.get(attr);
        if (v === undefined) throw new EvalError(`attribute ${attr} is missing`);
        return v;
      };
    }
    case 'has': {
      const l = compile(x.left);
      const path: string[] = Array.isArray(x.attr) ? x.attr : [x.attr];
      return (req) => {
        let attrs = attrsOf(req, l(req));
        for (let i = 0; i < path.length; i++) {
          if (!attrs) return false;
          const v = attrs.get(path[i]!);
          if (v === undefined) return false;
          if (i < path.length - 1) {
            if (!(v instanceof RecordVal) && !(v instanceof EntityVal))
              throw new EvalError('expected an entity or a record');
            attrs = attrsOf(req, v);
          }
        }
        return true;
      };
    }
    case 'like': {
      const l = compile(x.left);
      const pattern = x.pattern as (string | { Literal: string })[];
      return (req) => {
        const v = l(req);
        if (typeof v !== 'string') throw new EvalError('expected a string');
        return like(v, pattern);
      };
    }
    case 'is': {
      const l = compile(x.left);
      const type = x.entity_type as string;
      const within = x.in === undefined ? undefined : compile(x.in);
      return (req) => {
        const v = entity(l(req));
        if (v.type !== type) return false;
        return within ? inAny(req, v, within(req)) : true;
      };
    }
    case 'if-then-else': {
      const c = compile(x.if);
      const t = compile(x.then);
      const f = compile(x.else);
      return (req) => (bool(c(req)) ? t(req) : f(req));
    }
    case 'Set': {
      const items: Compiled[] = [];
      for (const y of x as Expr[]) items.push(compile(y));
      return (req) => {
        const out: Value[] = new Array(items.length);
        for (let i = 0; i < items.length; i++) out[i] = items[i]!(req);
        return out;
      };
    }
    case 'Record': {
      const fields: [string, Compiled][] = [];
      for (const [f, y] of Object.entries(x as Record<string, Expr>)) fields.push([f, compile(y)]);
      return (req) => {
        const m = new Map<string, Value>();
        for (const [f, c] of fields) m.set(f, c(req));
        return new RecordVal(m);
      };
    }
    default: {
      // Extension functions (ip, decimal, datetime, ...), getTag / hasTag, slots: cedar-wasm decides.
      return () => {
        throw new Unsupported(`unsupported expression ${k}`);
      };
    }
  }
}

interface ScopeConstraint {
  op: 'All' | '==' | 'in' | 'is';
  entity?: Uid;
  entities?: Uid[];
  slot?: string;
  entity_type?: string;
  in?: { entity?: Uid; slot?: string };
}

const uidKeys = new WeakMap<object, string>();
/** A scope's entity key, computed once per policy version. */
const keyOnce = (u: Uid): string => {
  let k = uidKeys.get(u);
  if (k === undefined) uidKeys.set(u, (k = keyOf(u)));
  return k;
};

function scope(c: ScopeConstraint, v: EntityVal, req: EvalRequest): boolean {
  switch (c.op) {
    case 'All':
      return true;
    case '==':
      if (!c.entity) throw new Unsupported('template slot');
      return v.key === keyOnce(c.entity);
    case 'in':
      if (c.entities) {
        for (const p of c.entities) if (isAncestor(req, v.key, keyOnce(p))) return true;
        return false;
      }
      if (!c.entity) throw new Unsupported('template slot');
      return isAncestor(req, v.key, keyOnce(c.entity));
    case 'is':
      if (v.type !== c.entity_type) return false;
      if (!c.in) return true;
      if (!c.in.entity) throw new Unsupported('template slot');
      return isAncestor(req, v.key, keyOnce(c.in.entity));
    default:
      throw new Unsupported('unknown scope constraint');
  }
}

/** A policy in Cedar's JSON form. */
export interface PolicyJson {
  effect: 'permit' | 'forbid';
  principal: ScopeConstraint;
  action: ScopeConstraint;
  resource: ScopeConstraint;
  conditions: { kind: 'when' | 'unless'; body: Expr }[];
}

const compiledConditions = new WeakMap<PolicyJson, { when: boolean; test: Compiled }[]>();

function conditionsOf(p: PolicyJson): { when: boolean; test: Compiled }[] {
  let c = compiledConditions.get(p);
  if (!c) {
    c = [];
    for (const x of p.conditions) c.push({ when: x.kind === 'when', test: compile(x.body) });
    compiledConditions.set(p, c);
  }
  return c;
}

/** Whether the policy is satisfied; throws EvalError (policy skipped) or Unsupported. */
export function satisfied(p: PolicyJson, req: EvalRequest): boolean {
  if (
    !scope(p.principal, req.principal, req) ||
    !scope(p.action, req.action, req) ||
    !scope(p.resource, req.resource, req)
  )
    return false;
  for (const c of conditionsOf(p)) {
    const v = bool(c.test(req));
    if (c.when ? !v : v) return false;
  }
  return true;
}

/**
 * Cedar's authorization: deny if any forbid is satisfied (its ids are the reasons), else allow if
 * any permit is (their ids), else deny with no reasons. Returns undefined when any policy needed
 * cedar-wasm (unsupported construct or evaluation error).
 */
export function decide(
  policies: readonly [string, PolicyJson][],
  req: EvalRequest,
): { decision: 'allow' | 'deny'; reasons: string[] } | undefined {
  const permits: string[] = [];
  const forbids: string[] = [];
  try {
    for (const [id, p] of policies) if (satisfied(p, req)) (p.effect === 'forbid' ? forbids : permits).push(id);
  } catch (err) {
    if (err instanceof Unsupported || err instanceof EvalError) return undefined;
    throw err;
  }
  if (forbids.length > 0) return { decision: 'deny', reasons: forbids };
  if (permits.length > 0) return { decision: 'allow', reasons: permits };
  return { decision: 'deny', reasons: [] };
}

/** The request's principal/action/resource/context as evaluator values. */
export function evalRequest(
  store: EntityStore,
  principal: PolicyEntity,
  action: Uid,
  resource: PolicyEntity,
  context: Record<string, unknown>,
): EvalRequest {
  const ctx = fromJson(context);
  if (!(ctx instanceof RecordVal)) throw new EvalError('context must be a record');
  const p = new EntityVal(principal.uid.type, principal.uid.id);
  const r = new EntityVal(resource.uid.type, resource.uid.id);
  return {
    principal: p,
    action: new EntityVal(action.type, action.id),
    resource: r,
    context: ctx,
    store,
    local: new Map([
      [p.key, principal],
      [r.key, resource],
    ]),
    localAttrs: new Map(),
    localAncestors: new Map(),
  };
}
