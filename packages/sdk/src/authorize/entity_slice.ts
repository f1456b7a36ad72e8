import type { PolicyEntity } from '@latchkey/protocol';
import type { EntityStore } from '@latchkey/policy';

export type Uid = { type: string; id: string };
export const uidKey = (u: Uid): string => `${u.type}::${JSON.stringify(u.id)}`;

/**
 * The entities of one bundle, indexed, and the slice a request can reach: the principal and the
 * resource, their ancestors (roles, groups — transitively), and entities their attributes point
 * to. Cedar gets only these, not the whole entity store.
 */
export class EntityIndex {
  private readonly store: EntityStore;

  /** Over the evaluator's store of the same bundle: one index of the entities, not two. */
  constructor(store: EntityStore) {
    this.store = store;
  }

  get size(): number {
    return this.store.size;
  }

  get(uid: Uid): PolicyEntity | undefined {
    return this.store.get(uidKey(uid));
  }

  /** `roots` (request entities, possibly not in the bundle) plus everything reachable from them. */
  slice(roots: PolicyEntity[]): PolicyEntity[] {
    const out = new Map<string, PolicyEntity>();
    const queue: PolicyEntity[] = [];
    // The first root with a uid wins: the request's principal and resource over the stored ones.
    for (const r of roots) {
      const k = uidKey(r.uid);
      if (out.has(k)) continue;
      out.set(k, r);
      queue.push(r);
    }
    while (queue.length > 0) {
      const e = queue.pop()!;
      const next: Uid[] = [...e.parents];
      for (const v of Object.values(e.attrs)) collectRefs(v, next);
      for (const u of next) {
        const k = uidKey(u);
        if (out.has(k)) continue;
        const found = this.store.get(k);
        if (!found) continue;
        out.set(k, found);
        queue.push(found);
      }
    }
    return [...out.values()];
  }
}

function collectRefs(v: unknown, into: Uid[], depth = 0): void {
  if (depth > 8 || v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    for (const x of v) collectRefs(x, into, depth + 1);
    return;
  }
  const o = v as Record<string, unknown>;
  const ref = o.__entity as Uid | undefined;
  if (ref && typeof ref.type === 'string' && typeof ref.id === 'string') into.push(ref);
  else for (const x of Object.values(o)) collectRefs(x, into, depth + 1);
}
