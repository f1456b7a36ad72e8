// One Cedar-shaped decision over a policy bundle, shared by the SDK authorizer and the IdP's own
// token policy: the TypeScript evaluator first, cedar-wasm (given the schema) for everything the
// evaluator leaves to it, and fail-closed handling of cedar-wasm traps.
import type * as CedarWasm from '@cedar-policy/cedar-wasm/nodejs';
import { CedarTrap, cedarGeneration, withCedar } from './cedar_engine.ts';
import { decide, EntityStore, EvalError, evalRequest, Unsupported, type PolicyJson } from './cedar_eval.ts';
import { isActionType, requestConforms, schemaFacts, type SchemaFacts } from './cedar_schema.ts';
import type { PolicyEntity } from '@latchkey/protocol';
import { jsonDepth, POLICY_LIMITS } from './policy_limits.ts';

type Uid = { type: string; id: string };

/** What {@link CompiledBundle.isAuthorized} answers (Cedar's response shape). */
export interface Decision {
  decision: 'allow' | 'deny';
  /** Policies that decided: the permits for allow, the forbids (if any) for deny. */
  reasons: string[];
  /** Policies that failed to evaluate (skipped, as Cedar specifies), or why the request was refused. */
  errors: string[];
  /** Set when no policy was evaluated: the request itself was refused (schema validation, limits, an engine failure). */
  refused?: true;
}

/** A request: principal and resource as entities (their attributes and parents as this request sees them). */
export interface DecisionRequest {
  principal: PolicyEntity;
  action: Uid;
  resource: PolicyEntity;
  context: Record<string, unknown>;
  /** Entities cedar-wasm is given (default: every stored entity plus principal and resource). */
  entities?: () => PolicyEntity[];
}

/** Traps on one bundle after which it is treated as broken: every decision denies at once. */
const TRAPS_BEFORE_BROKEN = 3;

let setCounter = 0;

/**
 * A bundle prepared for decisions: policies parsed to Cedar's JSON form once, schema facts (action
 * groups, request types) derived once, entities indexed with the schema's action entities. When the
 * schema declares extension-typed attributes or any policy uses what the evaluator leaves to Cedar,
 * every decision goes to cedar-wasm. A cedar-wasm trap denies (fail closed); after
 * {@link TRAPS_BEFORE_BROKEN} traps the bundle is `broken` and denies without calling Cedar.
 *
 * @example
 * ```ts
 * const b = CompiledBundle.compile({ schema, policies, entities });
 * const { decision } = b.isAuthorized({ principal, action, resource, context: {} });
 * ```
 */
export class CompiledBundle {
  readonly store: EntityStore;
  /** Stored entities, schema-derived action entities included. */
  readonly entities: PolicyEntity[];
  private readonly setId = `latchkey-bundle-${++setCounter}`;
  private preparedIn = -1;
  private traps = 0;
  /** Decisions taken by the TypeScript evaluator and by cedar-wasm (a measure of the fast path's reach). */
  readonly counts = { evaluator: 0, cedar: 0 };
  readonly policies: Record<string, string>;
  private readonly schemaText: string | undefined;
  readonly facts: SchemaFacts | undefined;
  readonly json: [string, PolicyJson][] | undefined;
  /**
   * Policies annotated `@sensitive`: a decision one of them decides is always audited as its own
   * event, never counted into an aggregate (docs/audit.md).
   */
  readonly sensitive: ReadonlySet<string>;

  private constructor(
    policies: Record<string, string>,
    schemaText: string | undefined,
    facts: SchemaFacts | undefined,
    /** Policies in JSON form for the evaluator; undefined when cedar-wasm decides everything. */
    json: [string, PolicyJson][] | undefined,
    entities: PolicyEntity[],
    sensitive: ReadonlySet<string>,
  ) {
    this.sensitive = sensitive;
    this.policies = policies;
    this.schemaText = schemaText;
    this.facts = facts;
    this.json = json;
    this.entities = entities;
    this.store = new EntityStore(entities);
  }

  /** Prepares a bundle. Throws {@link CedarTrap} when cedar-wasm trapped on it. */
  static compile(bundle: {
    schema: Record<string, string>;
    policies: Record<string, string>;
    entities: readonly PolicyEntity[];
  }): CompiledBundle {
    const facts = schemaFacts(bundle.schema);
    const json: [string, PolicyJson][] = [];
    const sensitive = new Set<string>();
    let parsed = true;
    for (const [id, text] of Object.entries(bundle.policies)) {
      const r = withCedar((c) => c.policyToJson(text));
      if (r.type === 'failure') {
        parsed = false;
        continue;
      }
      if (r.json.annotations && Object.hasOwn(r.json.annotations, 'sensitive')) sensitive.add(id);
      if (parsed) json.push([id, r.json as unknown as PolicyJson]);
    }
    // With a schema, action entities come from it alone (Cedar refuses others that differ).
    const entities = facts
      ? [...bundle.entities.filter((e) => !isActionType(e.uid.type)), ...facts.actions]
      : [...bundle.entities];
    const fast =
      json.length === Object.keys(bundle.policies).length && (!facts || evaluatorReadsAsCedar(facts, bundle.entities));
    const text = facts
      ? Object.keys(bundle.schema)
          .sort()
          .map((k) => bundle.schema[k])
          .join('\n')
      : undefined;
    return new CompiledBundle(bundle.policies, text, facts, fast ? json : undefined, entities, sensitive);
  }

  /** Whether cedar-wasm trapped on this bundle so often that it denies without asking. */
  get broken(): boolean {
    return this.traps >= TRAPS_BEFORE_BROKEN;
  }

  get trapCount(): number {
    return this.traps;
  }

  /** Cedar's decision for `req`. Never throws for a request: a refusal is a deny with errors. */
  isAuthorized(req: DecisionRequest): Decision {
    if (this.broken)
      return {
        decision: 'deny',
        reasons: [],
        errors: ['the policy engine failed on this bundle; every decision denies until a new version arrives'],
        refused: true,
      };
    if (jsonDepth(req.context) > POLICY_LIMITS.nesting || jsonDepth(req.resource.attrs) > POLICY_LIMITS.nesting) {
      return {
        decision: 'deny',
        reasons: [],
        errors: [`the request nests deeper than ${POLICY_LIMITS.nesting} levels`],
        refused: true,
      };
    }
    if (
      this.json &&
      (!this.facts || requestConforms(this.facts, req.principal, req.action, req.resource, req.context) === true)
    ) {
      try {
        const fast = decide(this.json, evalRequest(this.store, req.principal, req.action, req.resource, req.context));
        if (fast) {
          this.counts.evaluator++;
          return { ...fast, errors: [] };
        }
      } catch (err) {
        if (!(err instanceof Unsupported || err instanceof EvalError || err instanceof RangeError)) throw err;
      }
    }
    return this.withWasm(req);
  }

  private withWasm(req: DecisionRequest): Decision {
    this.counts.cedar++;
    try {
      const answer = withCedar((cedar) => {
        if (this.preparedIn !== cedarGeneration()) this.prepare(cedar);
        const entities = req.entities
          ? req.entities()
          : [
              ...this.entities.filter((e) => !sameUid(e.uid, req.principal.uid) && !sameUid(e.uid, req.resource.uid)),
              req.principal,
              req.resource,
            ];
        return cedar.statefulIsAuthorized({
          principal: req.principal.uid,
          action: req.action,
          resource: req.resource.uid,
          context: req.context as CedarWasm.Context,
          preparsedPolicySetId: this.setId,
          ...(this.schemaText !== undefined ? { preparsedSchemaName: this.setId, validateRequest: true } : {}),
          entities: (this.facts
            ? entities.filter((e) => !isActionType(e.uid.type))
            : entities) as CedarWasm.EntityJson[],
        });
      });
      return answer.type === 'success'
        ? {
            decision: answer.response.decision,
            reasons: answer.response.diagnostics.reason,
            errors: answer.response.diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
          }
        : { decision: 'deny', reasons: [], errors: answer.errors.map((e) => e.message), refused: true };
    } catch (err) {
      if (!(err instanceof CedarTrap)) throw err;
      this.traps++;
      return { decision: 'deny', reasons: [], errors: [err.message], refused: true };
    }
  }

  private prepare(cedar: typeof CedarWasm): void {
    const parsed = cedar.preparsePolicySet(this.setId, { staticPolicies: this.policies });
    if (parsed.type === 'failure')
      throw new Error(`the policy bundle does not parse: ${parsed.errors[0]?.message ?? ''}`);
    if (this.schemaText !== undefined) {
      const s = cedar.preparseSchema(this.setId, this.schemaText);
      if (s.type === 'failure') throw new Error(`the schema does not parse: ${s.errors[0]?.message ?? ''}`);
    }
    this.preparedIn = cedarGeneration();
  }
}

const sameUid = (a: Uid, b: Uid): boolean => a.type === b.type && a.id === b.id;

/**
 * Whether the evaluator reads this bundle's stored entities as Cedar does under the schema: no
 * extension-typed attributes (Cedar parses "10.0.0.1" as an ipaddr there) and only explicit
 * `__entity` references. Otherwise cedar-wasm decides everything for the bundle.
 */
function evaluatorReadsAsCedar(facts: SchemaFacts, entities: readonly PolicyEntity[]): boolean {
  const known = new Set(['Long', 'String', 'Boolean', 'Bool', 'Set', 'Record', 'Entity', ...facts.commonTypes.keys()]);
  const stack: unknown[] = [
    ...facts.commonTypes.values(),
    ...[...facts.entityTypes.values()].map((t) => t.shape),
    ...[...facts.appliesTo.values()].map((a) => a.context),
  ];
  while (stack.length > 0) {
    const t = stack.pop() as { type?: string; element?: unknown; attributes?: Record<string, unknown> } | undefined;
    if (!t) continue;
    if (t.type !== undefined && !known.has(t.type)) return false;
    if (t.element) stack.push(t.element);
    if (t.attributes) stack.push(...Object.values(t.attributes));
  }
  for (const e of entities) {
    if (isActionType(e.uid.type)) continue;
    const t = facts.entityTypes.get(e.uid.type);
    if (!t || t.enumerated) return false;
    // Stored entities were validated by Cedar at the IdP: only their JSON forms matter here.
    if (!entityAttrsExplicit(e.attrs, 0)) return false;
  }
  return true;
}

function entityAttrsExplicit(v: unknown, depth: number): boolean {
  if (depth > POLICY_LIMITS.nesting) return false;
  if (v === null || typeof v !== 'object') return true;
  if (Array.isArray(v)) return v.every((x) => entityAttrsExplicit(x, depth + 1));
  const o = v as Record<string, unknown>;
  if ('__extn' in o) return false;
  if ('__entity' in o) return true;
  // An object shaped exactly like {type, id} may be an implicit entity reference under the schema.
  const keys = Object.keys(o);
  if (keys.length === 2 && 'type' in o && 'id' in o && typeof o.type === 'string' && typeof o.id === 'string')
    return false;
  return keys.every((k) => entityAttrsExplicit(o[k], depth + 1));
}
