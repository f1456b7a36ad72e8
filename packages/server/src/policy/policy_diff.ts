import type { PolicyBundleContent, PolicyEntity } from '@latchkey/protocol';

export interface BundleDiff {
  policies: { added: string[]; removed: string[]; changed: string[] };
  schema: { added: string[]; removed: string[]; changed: string[] };
  entities: { added: string[]; removed: string[]; changed: string[] };
}

const uidOf = (e: PolicyEntity): string => `${e.uid.type}::${JSON.stringify(e.uid.id)}`;

function diffMaps(
  from: Map<string, string>,
  to: Map<string, string>,
): { added: string[]; removed: string[]; changed: string[] } {
  const added = [...to.keys()].filter((k) => !from.has(k)).sort();
  const removed = [...from.keys()].filter((k) => !to.has(k)).sort();
  const changed = [...to.keys()].filter((k) => from.has(k) && from.get(k) !== to.get(k)).sort();
  return { added, removed, changed };
}

/** What changed from one bundle to another: policies by id, schema fragments by name, entities by uid. */
export function diffBundles(from: PolicyBundleContent, to: PolicyBundleContent): BundleDiff {
  const ents = (b: PolicyBundleContent) =>
    new Map(b.entities.map((e) => [uidOf(e), JSON.stringify({ attrs: e.attrs, parents: e.parents })]));
  return {
    policies: diffMaps(new Map(Object.entries(from.policies)), new Map(Object.entries(to.policies))),
    schema: diffMaps(new Map(Object.entries(from.schema)), new Map(Object.entries(to.schema))),
    entities: diffMaps(ents(from), ents(to)),
  };
}
