import type { PolicyBundle } from '@latchkey/protocol';
import { withCedar } from '@latchkey/policy';
import { bundleDigest } from './policy_digest.ts';

const namespaceOf = (type: string): string => {
  const i = type.lastIndexOf('::');
  return i < 0 ? '' : type.slice(0, i);
};

/** Action uids a policy's scope names; undefined when it applies to every action. */
function scopedActions(text: string): { type: string }[] | undefined {
  const j = withCedar((cedar) => cedar.policyToJson(text));
  if (j.type !== 'success') return undefined;
  const a = j.json.action as { op: string; entity?: { type: string }; entities?: { type: string }[] };
  if (a.op === 'All') return undefined;
  return a.entities ?? (a.entity ? [a.entity] : undefined);
}

/**
 * What one service needs of a bundle: the schema of its namespaces (and the shared, un-namespaced
 * principal types), the policies whose actions are in them (or that apply to every action), and
 * the entities of those namespaces plus the shared ones (principals, roles, groups). Another
 * service's resources and rules stay at the IdP.
 */
export function sliceBundle(bundle: PolicyBundle, namespaces: readonly string[]): PolicyBundle {
  const keep = (ns: string): boolean => ns === '' || namespaces.includes(ns);
  const policies: Record<string, string> = {};
  for (const [id, text] of Object.entries(bundle.policies)) {
    const actions = scopedActions(text);
    if (!actions || actions.some((a) => keep(namespaceOf(a.type)))) policies[id] = text;
  }
  let schema = bundle.schema;
  const full = Object.keys(bundle.schema)
    .sort()
    .map((k) => bundle.schema[k])
    .join('\n');
  const json = withCedar((cedar) => cedar.schemaToJson(full));
  if (json.type === 'success') {
    const kept = Object.fromEntries(Object.entries(json.json).filter(([ns]) => keep(ns)));
    const text = withCedar((cedar) => cedar.schemaToText(kept));
    // A namespace that refers to one left out cannot stand alone: then the whole schema goes.
    if (text.type === 'success') schema = { 'slice.cedarschema': text.text };
  }
  const entities = bundle.entities.filter((e) => keep(namespaceOf(e.uid.type)));
  const content = { schema, policies, entities };
  return { ...bundle, ...content, digest: bundleDigest(content) };
}
