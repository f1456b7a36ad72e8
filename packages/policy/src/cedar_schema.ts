// What a Cedar schema implies for evaluation, worked out once per bundle in one place: the action
// entities and their groups (`action edit in [writeActions]`), which principal and resource types
// each action applies to, and the types of context and entity attributes. Cedar, given the schema,
// derives the same facts itself; the TypeScript evaluator must see them too, or its decisions differ
// from Cedar's (issue 11, finding 6).
import { withCedar } from './cedar_engine.ts';
import type { PolicyEntity } from '@latchkey/protocol';

type Uid = { type: string; id: string };

/** A type in Cedar's JSON schema form, with names resolved (schemaToJsonWithResolvedTypes). */
export interface SchemaType {
  type: string;
  element?: SchemaType;
  attributes?: Record<string, SchemaType & { required?: boolean }>;
  additionalAttributes?: boolean;
  name?: string;
}

interface EntityTypeFacts {
  memberOf: Set<string>;
  shape: SchemaType | undefined;
  /** Enumerated ids (`entity Status enum [...]`). */
  enumerated: boolean;
}

interface ActionFacts {
  principals: Set<string>;
  resources: Set<string>;
  context: SchemaType | undefined;
}

/** The facts of one schema. See the file comment. */
export interface SchemaFacts {
  /** Action entities with their parents, as Cedar derives them from the schema. */
  actions: PolicyEntity[];
  appliesTo: Map<string, ActionFacts>;
  entityTypes: Map<string, EntityTypeFacts>;
  commonTypes: Map<string, SchemaType>;
}

const PRIMITIVES = new Set(['Long', 'String', 'Boolean', 'Bool', 'Set', 'Record', 'Entity']);
const uidKey = (u: Uid): string => `${u.type}::${JSON.stringify(u.id)}`;
const qualify = (ns: string, name: string): string => (ns === '' || name.includes('::') ? name : `${ns}::${name}`);

/**
 * The facts of a bundle's schema (fragments joined), or undefined when it has none. Throws when
 * Cedar cannot read it — a published bundle's schema always parses.
 */
export function schemaFacts(schema: Record<string, string>): SchemaFacts | undefined {
  const text = Object.keys(schema)
    .sort()
    .map((k) => schema[k])
    .join('\n');
  if (text.trim() === '') return undefined;
  const answer = withCedar((c) => c.schemaToJsonWithResolvedTypes(text));
  if (answer.type !== 'success') throw new Error(`the schema does not parse: ${answer.errors[0]?.message ?? ''}`);
  const facts: SchemaFacts = { actions: [], appliesTo: new Map(), entityTypes: new Map(), commonTypes: new Map() };
  for (const [ns, frag] of Object.entries(answer.json as unknown as Record<string, Record<string, unknown>>)) {
    const actionType = qualify(ns, 'Action');
    for (const [name, t] of Object.entries((frag.commonTypes ?? {}) as Record<string, SchemaType>))
      facts.commonTypes.set(qualify(ns, name), t);
    for (const [name, e] of Object.entries(
      (frag.entityTypes ?? {}) as Record<string, { memberOfTypes?: string[]; shape?: SchemaType; enum?: string[] }>,
    )) {
      // Resolved names (memberOfTypes, principal and resource types, memberOf, Entity names) are
      // already fully qualified; only the declarations' own keys are relative to the namespace.
      facts.entityTypes.set(qualify(ns, name), {
        memberOf: new Set(e.memberOfTypes ?? []),
        shape: e.shape,
        enumerated: e.enum !== undefined,
      });
    }
    type ActionJson = {
      memberOf?: { id: string; type?: string }[];
      appliesTo?: { principalTypes?: string[]; resourceTypes?: string[]; context?: SchemaType };
    };
    for (const [id, a] of Object.entries((frag.actions ?? {}) as Record<string, ActionJson>)) {
      const uid = { type: actionType, id };
      facts.actions.push({
        uid,
        attrs: {},
        parents: (a.memberOf ?? []).map((m) => ({ type: m.type ?? actionType, id: m.id })),
      });
      facts.appliesTo.set(uidKey(uid), {
        principals: new Set(a.appliesTo?.principalTypes ?? []),
        resources: new Set(a.appliesTo?.resourceTypes ?? []),
        context: a.appliesTo?.context,
      });
    }
  }
  return facts;
}

/** Whether a name is an action entity type (`Action`, `Ns::Action`). */
export const isActionType = (type: string): boolean => type === 'Action' || type.endsWith('::Action');

type Verdict = boolean | 'unknown';
const and = (a: Verdict, b: Verdict): Verdict =>
  a === false || b === false ? false : a === 'unknown' || b === 'unknown' ? 'unknown' : true;

/**
 * Whether a JSON value conforms to a schema type, in the strict JSON forms the TypeScript evaluator
 * reads the same way Cedar does. 'unknown' where only Cedar can say (extension types, entity
 * references without `__entity`, enumerated entity types): the caller hands such a request to cedar-wasm.
 */
export function conforms(facts: SchemaFacts, value: unknown, t: SchemaType, depth = 0): Verdict {
  if (depth > 32) return 'unknown';
  switch (t.type) {
    case 'Long':
      return typeof value === 'number' && Number.isSafeInteger(value);
    case 'String':
      return typeof value === 'string';
    case 'Boolean':
    case 'Bool':
      return typeof value === 'boolean';
    case 'Set': {
      if (!Array.isArray(value)) return false;
      let v: Verdict = true;
      for (const x of value) if ((v = and(v, conforms(facts, x, t.element!, depth + 1))) === false) return false;
      return v;
    }
    case 'Record':
      return recordConforms(facts, value, t, depth);
    case 'Entity': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
      const ref = (value as { __entity?: Uid }).__entity;
      if (!ref) return 'unknown'; // the implicit {type, id} form: Cedar reads it by the schema
      return ref.type === t.name && !(facts.entityTypes.get(ref.type)?.enumerated ?? false)
        ? true
        : ref.type === t.name
          ? 'unknown'
          : false;
    }
    default: {
      const common = facts.commonTypes.get(t.type);
      return common && !PRIMITIVES.has(t.type) ? conforms(facts, value, common, depth + 1) : 'unknown'; // an extension type
    }
  }
}

function recordConforms(facts: SchemaFacts, value: unknown, t: SchemaType, depth: number): Verdict {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || '__entity' in value || '__extn' in value)
    return false;
  const o = value as Record<string, unknown>;
  const attrs = t.attributes ?? {};
  let v: Verdict = true;
  for (const [k, at] of Object.entries(attrs)) {
    if (o[k] === undefined) {
      if (at.required !== false) return false;
      continue;
    }
    if ((v = and(v, conforms(facts, o[k], at, depth + 1))) === false) return false;
  }
  if (!t.additionalAttributes) for (const k of Object.keys(o)) if (!(k in attrs)) return false;
  return v;
}

/** Whether an entity given with a request conforms: a declared type, allowed parent types, its attributes. */
export function entityConforms(facts: SchemaFacts, e: PolicyEntity): Verdict {
  const t = facts.entityTypes.get(e.uid.type);
  if (!t) return false;
  if (t.enumerated) return 'unknown';
  for (const p of e.parents) if (!t.memberOf.has(p.type)) return false;
  return conforms(facts, e.attrs, t.shape ?? { type: 'Record', attributes: {} });
}

/**
 * Cedar's request validation with a schema: the action is declared, the principal and resource
 * types are ones it applies to, the context has its declared type, and the request's own entities
 * conform. false means Cedar refuses the request; 'unknown' means only Cedar can say.
 */
export function requestConforms(
  facts: SchemaFacts,
  principal: PolicyEntity,
  action: Uid,
  resource: PolicyEntity,
  context: Record<string, unknown>,
): Verdict {
  const a = facts.appliesTo.get(uidKey(action));
  if (!a?.principals.has(principal.uid.type) || !a.resources.has(resource.uid.type)) return false;
  let v = conforms(facts, context, a.context ?? { type: 'Record', attributes: {} });
  if (v === false) return false;
  v = and(v, entityConforms(facts, principal));
  if (v === false) return false;
  return and(v, entityConforms(facts, resource));
}
