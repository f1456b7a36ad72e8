import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { PolicyBundleContent } from '@latchkey/protocol';
import {
  CedarTrap,
  cedarProblem as problem,
  hierarchyDepth,
  jsonDepth,
  POLICY_LIMITS,
  policyTextProblems,
  schemaTextProblems,
  withCedar,
  type PolicyProblem,
} from '@latchkey/policy';

export type { PolicyProblem } from '@latchkey/policy';

export interface ValidationReport {
  ok: boolean;
  errors: PolicyProblem[];
  warnings: PolicyProblem[];
}

/** The schema fragments joined, and where each starts, so a location maps back to its fragment. */
function joinSchema(schema: Record<string, string>): {
  text: string;
  parts: { name: string; start: number; text: string }[];
} {
  const parts: { name: string; start: number; text: string }[] = [];
  let text = '';
  for (const name of Object.keys(schema).sort()) {
    parts.push({ name, start: Buffer.byteLength(text, 'utf8'), text: schema[name]! });
    text += `${schema[name]!}\n`;
  }
  return { text, parts };
}

/**
 * Checks a bundle with Cedar itself before the IdP accepts it: the schema parses, every policy
 * parses and validates against the schema (strict mode), and the entities conform to the schema.
 * Validation warnings (an impossible policy, say) are reported but do not refuse the bundle.
 */
export function validateBundle(
  bundle: PolicyBundleContent,
  options: { reserved?: { fragment: string; namespace: string } } = {},
): ValidationReport {
  // The limits first, in TypeScript: input past them could trap cedar-wasm (docs/security.md).
  const limits = limitProblems(bundle);
  if (limits.length > 0) return { ok: false, errors: limits, warnings: [] };
  return validateWithinLimits(bundle, options);
}

/**
 * The Cedar part of {@link validateBundle}, for a bundle already checked with
 * {@link limitProblems} (the validation worker's caller checks them before sending it).
 */
export function validateWithinLimits(
  bundle: PolicyBundleContent,
  options: { reserved?: { fragment: string; namespace: string } } = {},
): ValidationReport {
  try {
    return withCedar((c) => validateWithCedar(c, bundle, options));
  } catch (err) {
    if (!(err instanceof CedarTrap)) throw err;
    return {
      ok: false,
      errors: [
        {
          source: 'bundle',
          kind: 'policy',
          message: err.message,
          help: 'reduce the size or nesting of the policies, schema or entities',
        },
      ],
      warnings: [],
    };
  }
}

/** Every way `bundle` exceeds {@link POLICY_LIMITS}, located like Cedar's own problems. */
export function limitProblems(bundle: PolicyBundleContent): PolicyProblem[] {
  const errors: PolicyProblem[] = [];
  for (const p of schemaTextProblems(joinSchema(bundle.schema).text))
    errors.push({ source: 'schema', kind: 'schema', ...p });
  for (const [id, text] of Object.entries(bundle.policies))
    for (const p of policyTextProblems(text)) errors.push({ source: id, kind: 'policy', ...p });
  for (const e of bundle.entities) {
    if (jsonDepth(e.attrs) > POLICY_LIMITS.nesting) {
      errors.push({
        source: 'entities',
        kind: 'entities',
        message: `${e.uid.type}::${JSON.stringify(e.uid.id)}: attributes nest deeper than ${POLICY_LIMITS.nesting} levels`,
        help: null,
      });
    }
  }
  const depth = hierarchyDepth(bundle.entities);
  if (depth === Infinity)
    errors.push({
      source: 'entities',
      kind: 'entities',
      message: 'the entity hierarchy has a cycle',
      help: 'an entity cannot be its own ancestor',
    });
  else if (depth > POLICY_LIMITS.hierarchyDepth) {
    errors.push({
      source: 'entities',
      kind: 'entities',
      message: `the entity hierarchy is ${depth} levels deep; at most ${POLICY_LIMITS.hierarchyDepth} are allowed`,
      help: 'flatten the groups',
    });
  }
  return errors;
}

function validateWithCedar(
  cedar: typeof import('@cedar-policy/cedar-wasm/nodejs'),
  bundle: PolicyBundleContent,
  options: { reserved?: { fragment: string; namespace: string } },
): ValidationReport {
  const errors: PolicyProblem[] = [];
  const warnings: PolicyProblem[] = [];
  const { text: schemaText, parts } = joinSchema(bundle.schema);
  const fragmentAt = (offset: number) => [...parts].reverse().find((p) => p.start <= offset) ?? parts[0];

  const schemaCheck = cedar.checkParseSchema(schemaText);
  if (schemaCheck.type === 'failure') {
    for (const e of schemaCheck.errors) {
      const f = fragmentAt(e.sourceLocations?.[0]?.start ?? 0);
      errors.push(problem('schema', f?.name ?? 'schema', f?.text, e, f?.start ?? 0));
    }
    return { ok: false, errors, warnings };
  }
  // Each policy alone first, so a parse error names its policy and a location inside it.
  for (const [id, text] of Object.entries(bundle.policies)) {
    const parsed = cedar.checkParsePolicySet({ staticPolicies: text });
    if (parsed.type === 'failure') for (const e of parsed.errors) errors.push(problem('policy', id, text, e));
    else if (
      cedar.policySetTextToParts(text).type === 'success' &&
      (cedar.policySetTextToParts(text) as { policies: string[] }).policies.length !== 1
    ) {
      errors.push({
        source: id,
        kind: 'policy',
        message: 'each policy id must hold exactly one policy',
        help: 'split the text, one policy per id',
      });
    }
  }
  if (errors.length > 0) return { ok: false, errors, warnings };

  // Policies of a reserved namespace (the IdP's own questions) are checked against the whole
  // schema; the services' policies against the schema without it, so that a policy over "every
  // action" need not also make sense for the IdP's reserved action.
  const reserved = options.reserved;
  const mentions = (text: string) => reserved !== undefined && text.includes(`${reserved.namespace}::`);
  const groups: [Record<string, string>, string][] = [
    [
      Object.fromEntries(Object.entries(bundle.policies).filter(([, t]) => !mentions(t))),
      reserved
        ? joinSchema(Object.fromEntries(Object.entries(bundle.schema).filter(([k]) => k !== reserved.fragment))).text
        : schemaText,
    ],
    [Object.fromEntries(Object.entries(bundle.policies).filter(([, t]) => mentions(t))), schemaText],
  ];
  for (const [policies, schema] of groups) {
    if (Object.keys(policies).length === 0) continue;
    const answer = cedar.validate({
      schema,
      policies: { staticPolicies: policies },
      validationSettings: { mode: 'strict' },
    });
    if (answer.type === 'failure') {
      for (const e of answer.errors) errors.push(problem('policy', 'policies', undefined, e));
    } else {
      for (const v of answer.validationErrors)
        errors.push(problem('policy', v.policyId, bundle.policies[v.policyId], v.error));
      for (const v of answer.validationWarnings)
        warnings.push(problem('policy', v.policyId, bundle.policies[v.policyId], v.error));
    }
  }
  const ents = cedar.checkParseEntities({ entities: bundle.entities as cedar.EntityJson[], schema: schemaText });
  if (ents.type === 'failure') for (const e of ents.errors) errors.push(problem('entities', 'entities', undefined, e));
  return { ok: errors.length === 0, errors, warnings };
}
