import { createHash } from 'node:crypto';
import type { PolicyBundleContent } from '@latchkey/protocol';

const sorted = (r: Record<string, string>): [string, string][] =>
  Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** SHA-256 (base64url) of a bundle's content in a canonical order: its ETag and identity. */
export function bundleDigest(b: PolicyBundleContent): string {
  const entities = [...b.entities].sort((x, y) =>
    `${x.uid.type}::${x.uid.id}` < `${y.uid.type}::${y.uid.id}` ? -1 : 1,
  );
  return createHash('sha256')
    .update(JSON.stringify([sorted(b.schema), sorted(b.policies), entities]))
    .digest('base64url');
}
